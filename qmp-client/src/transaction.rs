//! A typed `transaction` builder: only actions that QEMU accepts in a
//! transaction can be added (see [`qmp_types::IntoTransactionAction`]).

use qmp_types::{
    ActionCompletionMode, IntoTransactionAction, Transaction, TransactionAction,
    TransactionProperties,
};

/// Builds a `transaction` command.
///
/// ```
/// use qmp_client::TransactionBuilder;
/// use qmp_types::{BlockDirtyBitmapAdd, BlockDirtyBitmap, BlockDirtyBitmapClear};
/// let t = TransactionBuilder::new()
///     .action(BlockDirtyBitmapAdd::new("drive0", "b1"))
///     .action(BlockDirtyBitmapClear(BlockDirtyBitmap::new("drive0", "b0")))
///     .grouped();
/// assert_eq!(t.len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TransactionBuilder {
    actions: Vec<TransactionAction>,
    grouped: bool,
}

impl TransactionBuilder {
    /// An empty transaction.
    pub fn new() -> TransactionBuilder {
        TransactionBuilder::default()
    }

    /// Adds an action.
    #[must_use]
    pub fn action(mut self, action: impl IntoTransactionAction) -> Self {
        self.actions.push(action.into_action());
        self
    }

    /// `completion-mode: grouped`: block jobs the actions start succeed or
    /// fail together.
    #[must_use]
    pub fn grouped(mut self) -> Self {
        self.grouped = true;
        self
    }

    /// How many actions.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The `transaction` command.
    pub fn build(self) -> Transaction {
        let t = Transaction::new(self.actions);
        if self.grouped {
            t.with_properties(
                TransactionProperties::new().with_completion_mode(ActionCompletionMode::Grouped),
            )
        } else {
            t
        }
    }
}
