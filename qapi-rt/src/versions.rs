//! QEMU versions, and whether a command (or argument) exists in the QEMU a
//! client is connected to, by the schemas the bindings were generated
//! from ([`check_available`]).

use std::fmt;

/// A QEMU version, as the QMP greeting gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QemuVersion {
    /// Major (`10` of 10.0.2).
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Micro (stable releases of one minor share their schema).
    pub micro: u32,
}

impl QemuVersion {
    /// A version from its parts.
    pub const fn new(major: u32, minor: u32, micro: u32) -> QemuVersion {
        QemuVersion {
            major,
            minor,
            micro,
        }
    }

    /// Parses `X.Y` or `X.Y.Z` (a schema's `Since:` or a manifest label);
    /// `None` for anything else.
    pub fn parse(s: &str) -> Option<QemuVersion> {
        let mut it = s.trim().split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let micro = match it.next() {
            Some(m) => m.parse().ok()?,
            None => 0,
        };
        if it.next().is_some() {
            return None;
        }
        Some(QemuVersion::new(major, minor, micro))
    }

    /// The release series (major, minor): the schema changes only between
    /// series.
    pub fn series(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// A command, or an argument of one, that the connected QEMU lacks by the
/// schemas the bindings were generated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// What (`command `query-cryptodev``, `argument `x` of `blockdev-add``).
    pub what: String,
    /// Why: what is needed (`needs QEMU ≥ 8.0`, `removed by QEMU 10.0`).
    pub needs: String,
    /// The versions, of those the bindings cover, that have it.
    pub known_in: Vec<&'static str>,
    /// The connected QEMU.
    pub connected: QemuVersion,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}, connected to {} (the bindings know it in QEMU {})",
            self.what,
            self.needs,
            self.connected,
            self.known_in.join(", ")
        )
    }
}

impl std::error::Error for Unavailable {}

/// The release series of a version label, as [`QemuVersion::parse`] and
/// [`QemuVersion::series`] would give it, without their string
/// splitting (this runs for every command sent).
fn series_of(label: &str) -> Option<(u32, u32)> {
    let b = label.trim().as_bytes();
    let mut parts = [0u32; 3];
    let (mut part, mut digits) = (0, 0);
    for &c in b {
        match c {
            b'0'..=b'9' => {
                parts[part] = parts[part]
                    .checked_mul(10)?
                    .checked_add(u32::from(c - b'0'))?;
                digits += 1;
            }
            b'.' if digits > 0 && part < 2 => {
                part += 1;
                digits = 0;
            }
            _ => return None,
        }
    }
    (part >= 1 && digits > 0).then_some((parts[0], parts[1]))
}

/// Whether an item that the versions `have` (labels, of the bindings'
/// `all`, both oldest first) and the schema says exists `since` is in QEMU
/// `connected`. Refuses only what is known to be missing:
///
/// - `connected` is of a series the bindings cover: it has the item if
///   that series' schema has it;
/// - otherwise: it is older than `since` (or, without `since`, not newer
///   than the last covered series before the first that has it), or not
///   older than the first covered series after the last that has it.
///
/// `have` empty (bindings from one schema without versions) or
/// unparsable labels: no check.
pub fn check_available(
    what: impl FnOnce() -> String,
    have: &'static [&'static str],
    since: Option<&str>,
    all: &[&str],
    connected: QemuVersion,
) -> Result<(), Unavailable> {
    // The common case first, without allocating: a covered series whose
    // schema has the item.
    if have
        .iter()
        .any(|h| series_of(h) == Some(connected.series()))
    {
        return Ok(());
    }
    let parse_all: Option<Vec<QemuVersion>> = all.iter().map(|l| QemuVersion::parse(l)).collect();
    let (Some(all_v), false) = (parse_all, have.is_empty()) else {
        return Ok(());
    };
    let has = |v: &QemuVersion| {
        have.iter()
            .any(|h| QemuVersion::parse(h).is_some_and(|h| h.series() == v.series()))
    };
    let fail = |needs: String| {
        Err(Unavailable {
            what: what(),
            needs,
            known_in: have.to_vec(),
            connected,
        })
    };
    let series = |v: &QemuVersion| format!("{}.{}", v.major, v.minor);
    // A covered series: its schema decides.
    if let Some(v) = all_v.iter().find(|v| v.series() == connected.series()) {
        if has(v) {
            return Ok(());
        }
        return match all_v.iter().position(&has) {
            Some(first) if all_v[first] > *v => fail(format!(
                "needs QEMU ≥ {}",
                since.unwrap_or(&series(&all_v[first]))
            )),
            _ => fail(format!("is not in QEMU {}", series(v))),
        };
    }
    let Some(first) = all_v.iter().position(&has) else {
        return Ok(());
    };
    let last = all_v.iter().rposition(&has).unwrap_or(first);
    match since.and_then(QemuVersion::parse) {
        Some(s) if connected.series() < s.series() => {
            return fail(format!("needs QEMU ≥ {}", series(&s)));
        }
        None if first > 0 && connected.series() <= all_v[first - 1].series() => {
            return fail(format!(
                "needs QEMU newer than {}",
                series(&all_v[first - 1])
            ));
        }
        _ => {}
    }
    if let Some(gone) = all_v.get(last + 1)
        && connected.series() >= gone.series()
    {
        return fail(format!("was removed by QEMU {}", series(gone)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[&str] = &["7.2.0", "10.0.2", "10.2.2"];

    fn check(have: &'static [&'static str], since: Option<&str>, c: &str) -> Result<(), String> {
        let c = QemuVersion::parse(c).expect("version");
        check_available(|| "command `x`".into(), have, since, ALL, c).map_err(|e| e.to_string())
    }

    #[test]
    fn series_of_agrees_with_parse() {
        for label in [
            "10.0.2",
            "7.2.0",
            " 9.1 ",
            "1.2",
            "1",
            "",
            "1..2",
            "1.2.",
            "1.2.3.4",
            "a.b",
            "4294967295.1",
            "4294967296.1",
            "10.0.2-rc1",
            ".1.2",
        ] {
            assert_eq!(
                series_of(label),
                QemuVersion::parse(label).map(|v| v.series()),
                "{label:?}"
            );
        }
    }

    #[test]
    fn covered_series_decide_by_their_schema() {
        assert_eq!(
            check(&["7.2.0", "10.0.2", "10.2.2"], Some("1.0"), "7.2.22"),
            Ok(())
        );
        assert_eq!(
            check(&["10.0.2", "10.2.2"], Some("8.0"), "7.2.22"),
            Err("command `x` needs QEMU ≥ 8.0, connected to 7.2.22 (the bindings know it in QEMU 10.0.2, 10.2.2)".into())
        );
        assert_eq!(
            check(&["7.2.0"], Some("2.0"), "10.0.2"),
            Err("command `x` is not in QEMU 10.0, connected to 10.0.2 (the bindings know it in QEMU 7.2.0)".into())
        );
        assert_eq!(
            check(&["10.2.2"], None, "10.0.0").map_err(|e| e.contains("≥ 10.2")),
            Err(true)
        );
    }

    #[test]
    fn other_series_are_refused_only_when_known_missing() {
        // 9.1 lies between 7.2 and 10.0: `since` decides.
        assert_eq!(check(&["10.0.2", "10.2.2"], Some("8.0"), "9.1.0"), Ok(()));
        assert!(check(&["10.0.2", "10.2.2"], Some("9.2"), "9.1.0").is_err());
        // Without `since`: only up to the last covered series lacking it.
        assert_eq!(check(&["10.0.2", "10.2.2"], None, "9.1.0"), Ok(()));
        assert!(check(&["10.0.2", "10.2.2"], None, "7.1.0").is_err());
        // Removed by 10.0: gone in 11.0 too, unknown in 8.0.
        assert!(check(&["7.2.0"], Some("2.0"), "11.0.0").is_err());
        assert_eq!(check(&["7.2.0"], Some("2.0"), "8.0.0"), Ok(()));
        // Newer than every covered QEMU: present if the newest has it.
        assert_eq!(check(ALL, Some("1.0"), "11.1.0"), Ok(()));
    }

    #[test]
    fn no_versions_no_check() {
        assert_eq!(check(&[], Some("9.0"), "1.0.0"), Ok(()));
    }

    #[test]
    fn versions_parse() {
        assert_eq!(QemuVersion::parse("10.2"), Some(QemuVersion::new(10, 2, 0)));
        assert_eq!(
            QemuVersion::parse(" 7.2.22"),
            Some(QemuVersion::new(7, 2, 22))
        );
        assert_eq!(QemuVersion::parse("7"), None);
        assert_eq!(QemuVersion::parse("7.2.1.1"), None);
        assert_eq!(QemuVersion::parse("x.2"), None);
    }
}
