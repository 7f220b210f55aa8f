//! Drawing `qmp top`'s views with ratatui: the list (one line per VM),
//! one VM's detail (sparklines of its I/O, bars for its jobs and its
//! migration, its recent events), and the keys. Everything fits 80x24.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{
    Block, Borders, Cell, Gauge, List, ListItem, Paragraph, Row as TRow, Sparkline, Table,
    TableState,
};

use super::app::{App, Column, Row, View, percent};
use crate::watching::ratio;

/// `bytes` per second, short: `12.3M`.
fn rate(bytes: f64) -> String {
    let units = ["", "K", "M", "G", "T"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}{}", units[u])
    }
}

pub fn draw(f: &mut Frame<'_>, app: &App) {
    let [main, keys] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(f.area());
    match &app.view {
        View::List => list(f, main, app),
        View::Detail(_) => match app.detail() {
            Some(r) => detail(f, main, r),
            None => list(f, main, app),
        },
        View::Help => help(f, main),
    }
    let hint = match app.view {
        View::List => "q quit  ↑↓ move  Enter detail  < > sort  r reverse  h help",
        View::Detail(_) => "q quit  Esc back  h help",
        View::Help => "q quit  h/Esc back",
    };
    f.render_widget(
        Paragraph::new(hint).style(Style::new().add_modifier(Modifier::REVERSED)),
        keys,
    );
}

fn list(f: &mut Frame<'_>, area: Rect, app: &App) {
    let widths = [
        Constraint::Length(14),
        Constraint::Length(11),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(11),
        Constraint::Length(14),
        Constraint::Length(6),
    ];
    let header = TRow::new(Column::ALL.map(|c| {
        let mark = if c == app.sort {
            if app.reverse { "^" } else { "v" }
        } else {
            ""
        };
        Cell::from(format!("{}{mark}", c.title()))
    }))
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.rows.iter().map(|r| {
        TRow::new([
            r.view.name.clone(),
            r.state.clone(),
            format!("{:.0}", r.rate.read_iops + r.rate.write_iops),
            rate(r.rate.read_bps),
            rate(r.rate.write_bps),
            r.jobs.clone(),
            r.migration.clone(),
            r.events.to_string(),
        ])
    });
    let title = format!(" qmp top: {} VMs ", app.rows.len());
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::default().borders(Borders::ALL).title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default();
    if !app.rows.is_empty() {
        state.select(Some(app.index()));
    }
    f.render_stateful_widget(table, area, &mut state);
}

fn detail(f: &mut Frame<'_>, area: Rect, r: &Row) {
    let v = &r.view;
    let last = v.last();
    let jobs = last.map_or(0, |s| s.jobs.len());
    let migrating = last.is_some_and(|s| s.migration.is_some());
    let [head, io, bars, events] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Length(
            u16::try_from(jobs + usize::from(migrating))
                .unwrap_or(4)
                .min(4)
                * 3,
        ),
        Constraint::Min(3),
    ])
    .areas(area);
    let vcpus = last.map_or_else(String::new, |s| {
        s.vcpus
            .iter()
            .map(|c| format!("{}:{}", c.index, c.thread_id))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let balloon = last
        .and_then(|s| s.balloon)
        .map_or_else(|| "-".into(), |b| format!("{} MiB", b >> 20));
    let text = vec![
        Line::from(format!(
            "{}  {}  QEMU {}  polls {} (slow {})",
            v.name,
            r.state,
            v.version.as_deref().unwrap_or("?"),
            v.polls,
            v.slow_polls
        )),
        Line::from(format!("socket {}", v.path.display())),
        Line::from(format!("vCPU:thread {vcpus}  balloon {balloon}")),
        Line::from(format!("disks {}", devices(v))),
    ];
    f.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::TOP).title(" VM ")),
        head,
    );
    let rates = v.rates();
    let series = |pick: fn(&qmp_client::collector::IoRate) -> f64| -> Vec<u64> {
        let width = usize::from(io.width.saturating_sub(2));
        let skip = rates.len().saturating_sub(width);
        rates
            .iter()
            .skip(skip)
            .map(|x| pick(x).max(0.0) as u64)
            .collect()
    };
    let [iops, bps] = Layout::vertical([Constraint::Length(4), Constraint::Length(4)]).areas(io);
    let (ri, wi) = (r.rate.read_iops, r.rate.write_iops);
    let (rl, wl) = (r.rate.read_latency_ms, r.rate.write_latency_ms);
    f.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::TOP).title(format!(
                " IOPS  read {ri:.0}  write {wi:.0}  latency {rl:.2}/{wl:.2} ms "
            )))
            .data(series(|x| x.read_iops + x.write_iops)),
        iops,
    );
    let (rb, wb) = (rate(r.rate.read_bps), rate(r.rate.write_bps));
    f.render_widget(
        Sparkline::default()
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .title(format!(" bytes/s  read {rb}  write {wb} ")),
            )
            .data(series(|x| x.read_bps + x.write_bps)),
        bps,
    );
    let mut gauges: Vec<(String, f64)> = Vec::new();
    if let Some(s) = last {
        for j in &s.jobs {
            let ratio = ratio(j.current_progress as f64, j.total_progress as f64);
            gauges.push((
                format!(
                    " job {} ({}, {}) {} ",
                    j.id,
                    j.r#type,
                    j.status,
                    percent(j.current_progress, j.total_progress)
                ),
                ratio,
            ));
        }
        if let Some(m) = &s.migration {
            let ratio = ratio(m.total.saturating_sub(m.remaining) as f64, m.total as f64);
            let status = m
                .status
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            gauges.push((
                format!(" migration {status}, {}/s ", rate(m.mbps * 1e6 / 8.0)),
                ratio,
            ));
        }
    }
    let slots = Layout::vertical(gauges.iter().map(|_| Constraint::Length(3))).split(bars);
    for ((title, ratio), slot) in gauges.into_iter().zip(slots.iter()) {
        f.render_widget(
            Gauge::default()
                .block(Block::default().borders(Borders::TOP).title(title))
                .ratio(ratio.clamp(0.0, 1.0)),
            *slot,
        );
    }
    let items: Vec<ListItem<'_>> = v
        .recent_events
        .iter()
        .rev()
        .map(|(at, name)| {
            let secs = at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() % 86_400)
                .unwrap_or(0);
            ListItem::new(format!(
                "{:02}:{:02}:{:02}  {name}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            ))
        })
        .collect();
    let counts: Vec<String> = v.events.iter().map(|(n, c)| format!("{n} {c}")).collect();
    f.render_widget(
        List::new(items).block(
            Block::default()
                .borders(Borders::TOP)
                .title(format!(" events (UTC): {} ", counts.join(", "))),
        ),
        events,
    );
}

/// Each disk's name and IOPS between the last two samples.
fn devices(v: &qmp_client::collector::MonitorView) -> String {
    let [.., a, b] = v.samples.as_slice() else {
        return "-".into();
    };
    let names: Vec<&str> = b.block.iter().map(|d| d.name()).collect();
    if names.is_empty() {
        return "-".into();
    }
    names
        .iter()
        .map(|n| {
            let r = qmp_client::collector::IoRate::of_device(a, b, n);
            format!("{n} {:.0}/{:.0} IOPS", r.read_iops, r.write_iops)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn help(f: &mut Frame<'_>, area: Rect) {
    let text = [
        "qmp top: one line per VM, polled through its QMP monitor.",
        "",
        "  q, F10, Ctrl-C   quit",
        "  Up/Down, k/j     move",
        "  PgUp/PgDn, Home/End",
        "  Enter, Right     the VM's detail: I/O sparklines, jobs, migration, events",
        "  Esc, Left        back to the list",
        "  <, >, F6         sort by the previous / next column",
        "  r, I             reverse the order",
        "  h, ?, F1         this help",
        "",
        "STATE is the run state (query-status), else the monitor's: connecting,",
        "slow (its last poll took longer than the interval) or gone.",
    ];
    f.render_widget(
        Paragraph::new(text.map(Line::from).to_vec())
            .block(Block::default().borders(Borders::ALL).title(" help ")),
        area,
    );
}
