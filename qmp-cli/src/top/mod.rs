//! `qmp top`: a terminal dashboard over the collector, for a person:
//! one line per VM (name, state, IOPS, throughput, jobs, migration,
//! events), sortable, and a detail view per VM. Keys as in top/htop;
//! fits 80x24 (over ssh too); the terminal is restored however it ends.

mod app;
mod draw;

use std::time::Duration;

use clap::Args;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::watching::WatchArgs;
use app::{App, Key};

/// `qmp top`'s arguments.
#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// What a key press means here.
fn key_of(k: KeyEvent) -> Option<Key> {
    if k.kind != KeyEventKind::Press {
        return None;
    }
    Some(match k.code {
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::Quit,
        KeyCode::Char('q') | KeyCode::F(10) => Key::Quit,
        KeyCode::Up | KeyCode::Char('k') => Key::Up,
        KeyCode::Down | KeyCode::Char('j') => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Enter | KeyCode::Right => Key::Open,
        KeyCode::Esc | KeyCode::Left | KeyCode::Backspace => Key::Back,
        KeyCode::Char('>') | KeyCode::Char('.') | KeyCode::F(6) => Key::SortNext,
        KeyCode::Char('<') | KeyCode::Char(',') => Key::SortPrev,
        KeyCode::Char('r') | KeyCode::Char('I') => Key::Reverse,
        KeyCode::Char('h') | KeyCode::Char('?') | KeyCode::F(1) => Key::Help,
        _ => return None,
    })
}

/// Runs until the person quits.
pub async fn run(target: &Target, a: &TopArgs) -> Result<()> {
    // Enough samples for a sparkline across an 80-column terminal.
    let collector = a.watch.start(target, 80)?;
    // Keys are read on a thread of their own (crossterm's reads block).
    let (keys_tx, mut keys) = tokio::sync::mpsc::channel(64);
    let reader = std::thread::spawn(move || {
        loop {
            match event::poll(Duration::from_millis(200)) {
                Ok(true) => match event::read() {
                    Ok(Event::Key(k)) => {
                        if let Some(k) = key_of(k)
                            && keys_tx.blocking_send(k).is_err()
                        {
                            return;
                        }
                    }
                    // A resize redraws on the next tick.
                    Ok(_) => {}
                    Err(_) => return,
                },
                Ok(false) => {
                    if keys_tx.is_closed() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    let mut terminal = ratatui::try_init()
        .map_err(|e| CliError::Io(format!("can't take over the terminal: {e}")))?;
    let mut app = App::new();
    // Four frames a second at most, news or not.
    let mut redraw = tokio::time::interval(Duration::from_millis(250));
    let r = loop {
        app.update(collector.snapshot());
        app.page = usize::from(terminal.size().map_or(24, |s| s.height).saturating_sub(5)).max(1);
        if let Err(e) = terminal.draw(|f| draw::draw(f, &app)) {
            break Err(CliError::Io(format!("can't draw: {e}")));
        }
        tokio::select! {
            k = keys.recv() => match k {
                Some(k) => {
                    if !app.key(k) {
                        break Ok(());
                    }
                }
                None => break Err(CliError::Io("the terminal's input ended".into())),
            },
            _ = redraw.tick() => {}
        }
    };
    ratatui::restore();
    drop(keys);
    let _ = reader.join();
    r
}
