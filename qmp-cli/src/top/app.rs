//! What `qmp top` shows and how keys change it, apart from drawing: the
//! rows (one per VM, from the collector's snapshot), their order, the
//! selection, and the view (list, one VM's detail, help).

use qmp_client::collector::{Health, IoRate, MonitorView};

use crate::watching::ratio;

/// A key, as `qmp top` understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Open,
    Back,
    SortNext,
    SortPrev,
    Reverse,
    Help,
}

/// The columns the list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    State,
    Iops,
    Read,
    Write,
    Jobs,
    Migration,
    Events,
}

impl Column {
    pub const ALL: [Column; 8] = [
        Column::Name,
        Column::State,
        Column::Iops,
        Column::Read,
        Column::Write,
        Column::Jobs,
        Column::Migration,
        Column::Events,
    ];

    /// Its heading.
    pub fn title(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::State => "STATE",
            Column::Iops => "IOPS",
            Column::Read => "READ/s",
            Column::Write => "WRITE/s",
            Column::Jobs => "JOBS",
            Column::Migration => "MIGRATION",
            Column::Events => "EVENTS",
        }
    }
}

/// The view shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    List,
    /// The VM with this socket path.
    Detail(std::path::PathBuf),
    Help,
}

/// One VM's line.
#[derive(Debug, Clone)]
pub struct Row {
    pub view: MonitorView,
    pub rate: IoRate,
    /// Its run state, or how the monitor is doing when that says more.
    pub state: String,
    pub jobs: String,
    pub migration: String,
    pub events: u64,
}

impl Row {
    pub fn of(view: MonitorView) -> Row {
        let rate = view.rate().unwrap_or_default();
        let last = view.last();
        let state = match (&view.health, last.and_then(|s| s.status.as_ref())) {
            (Health::Up, Some(s)) => s.to_string(),
            (Health::Slow, Some(s)) => format!("{s} (slow)"),
            (h, _) => h.as_str().to_string(),
        };
        let jobs = last.map_or_else(String::new, |s| match s.jobs.as_slice() {
            [] => "-".into(),
            [j] => format!(
                "{} {}",
                j.r#type,
                percent(j.current_progress, j.total_progress)
            ),
            js => format!("{} jobs", js.len()),
        });
        let migration = last.and_then(|s| s.migration.as_ref()).map_or_else(
            || "-".into(),
            |m| {
                let status = m
                    .status
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let done = i64::try_from(m.total.saturating_sub(m.remaining)).unwrap_or(0);
                let total = i64::try_from(m.total).unwrap_or(0);
                if total > 0 && status != "completed" {
                    format!("{status} {}", percent(done, total))
                } else {
                    status
                }
            },
        );
        let events = view.events.values().sum();
        Row {
            rate,
            state,
            jobs,
            migration,
            events,
            view,
        }
    }
}

/// `done` of `total` as a percentage.
pub fn percent(done: i64, total: i64) -> String {
    format!("{:.0}%", ratio(done as f64, total as f64) * 100.0)
}

/// The dashboard's state.
#[derive(Debug)]
pub struct App {
    pub rows: Vec<Row>,
    pub sort: Column,
    pub reverse: bool,
    /// The selected row's socket path (kept across re-sorts).
    pub selected: Option<std::path::PathBuf>,
    pub view: View,
    /// Rows a page moves.
    pub page: usize,
}

impl App {
    pub fn new() -> App {
        App {
            rows: Vec::new(),
            sort: Column::Name,
            reverse: false,
            selected: None,
            view: View::List,
            page: 10,
        }
    }

    /// New data from the collector.
    pub fn update(&mut self, views: Vec<MonitorView>) {
        self.rows = views.into_iter().map(Row::of).collect();
        self.order();
        let known = |p: &std::path::PathBuf| self.rows.iter().any(|r| &r.view.path == p);
        if !self.selected.as_ref().is_some_and(known) {
            self.selected = self.rows.first().map(|r| r.view.path.clone());
        }
        // A VM whose detail is shown and that went: back to the list.
        if let View::Detail(p) = &self.view
            && !known(p)
        {
            self.view = View::List;
        }
    }

    fn order(&mut self) {
        let key = self.sort;
        self.rows.sort_by(|a, b| {
            let o = match key {
                Column::Name => a.view.name.cmp(&b.view.name),
                Column::State => a.state.cmp(&b.state),
                Column::Iops => (a.rate.read_iops + a.rate.write_iops)
                    .total_cmp(&(b.rate.read_iops + b.rate.write_iops)),
                Column::Read => a.rate.read_bps.total_cmp(&b.rate.read_bps),
                Column::Write => a.rate.write_bps.total_cmp(&b.rate.write_bps),
                Column::Jobs => a.jobs.cmp(&b.jobs),
                Column::Migration => a.migration.cmp(&b.migration),
                Column::Events => a.events.cmp(&b.events),
            };
            // Numbers: biggest first, as top does.
            let o = if matches!(key, Column::Name | Column::State) {
                o
            } else {
                o.reverse()
            };
            let o = o.then_with(|| a.view.name.cmp(&b.view.name));
            if self.reverse { o.reverse() } else { o }
        });
    }

    /// The selected row's index.
    pub fn index(&self) -> usize {
        self.selected
            .as_ref()
            .and_then(|p| self.rows.iter().position(|r| &r.view.path == p))
            .unwrap_or(0)
    }

    fn select(&mut self, i: usize) {
        if let Some(r) = self.rows.get(i.min(self.rows.len().saturating_sub(1))) {
            self.selected = Some(r.view.path.clone());
        }
    }

    /// The row whose detail is shown.
    pub fn detail(&self) -> Option<&Row> {
        match &self.view {
            View::Detail(p) => self.rows.iter().find(|r| &r.view.path == p),
            _ => None,
        }
    }

    /// Applies `key`; false when it quits.
    pub fn key(&mut self, key: Key) -> bool {
        let i = self.index();
        let cols = Column::ALL.len();
        let at = Column::ALL
            .iter()
            .position(|c| *c == self.sort)
            .unwrap_or(0);
        match key {
            Key::Quit => return false,
            Key::Up => self.select(i.saturating_sub(1)),
            Key::Down => self.select(i + 1),
            Key::PageUp => self.select(i.saturating_sub(self.page)),
            Key::PageDown => self.select(i + self.page),
            Key::Home => self.select(0),
            Key::End => self.select(usize::MAX),
            Key::Open => {
                if self.view == View::List
                    && let Some(p) = self.selected.clone()
                {
                    self.view = View::Detail(p);
                }
            }
            Key::Back => self.view = View::List,
            Key::SortNext => self.sort = Column::ALL[(at + 1) % cols],
            Key::SortPrev => self.sort = Column::ALL[(at + cols - 1) % cols],
            Key::Reverse => self.reverse = !self.reverse,
            Key::Help => {
                self.view = if self.view == View::Help {
                    View::List
                } else {
                    View::Help
                }
            }
        }
        self.order();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentage_of_nothing_is_zero() {
        assert_eq!(percent(1, 4), "25%");
        assert_eq!(percent(5, 0), "0%");
        assert_eq!(percent(4, 4), "100%");
    }

    #[test]
    fn sorting_cycles_through_every_column_both_ways() {
        let mut app = App::new();
        for c in Column::ALL.iter().skip(1).chain([&Column::Name]) {
            assert!(app.key(Key::SortNext));
            assert_eq!(app.sort, *c);
        }
        app.key(Key::SortPrev);
        assert_eq!(app.sort, Column::Events);
        assert!(!app.key(Key::Quit));
        app.key(Key::Help);
        assert_eq!(app.view, View::Help);
        app.key(Key::Help);
        assert_eq!(app.view, View::List);
    }
}
