//! `query-status` is not a transaction action: this must not compile.
use qmp_types::{IntoTransactionAction, QueryStatus};

fn add(action: impl IntoTransactionAction) {
    let _ = action.into_action();
}

fn main() {
    add(QueryStatus::new());
}
