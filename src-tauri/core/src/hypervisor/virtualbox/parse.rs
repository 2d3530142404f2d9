//! Parsers of VBoxManage output: `showvminfo --machinereadable`, `list vms`, `createvm`,
//! `getextradata`, `--version`. Pure; tested against real output recorded in
//! `src-tauri/core/tests/fixtures/vbox/`.

use std::collections::BTreeMap;

use crate::hypervisor::VmState;

/// The most output we parse from one command (bounded before any allocation grows with it).
pub const MAX_PARSE_BYTES: usize = 1 << 20;

/// `showvminfo --machinereadable` as key/value pairs (keys and values unquoted and unescaped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineInfo {
    pub entries: BTreeMap<String, String>,
}

/// What VirtualBox's `VMState` says, mapped onto what a session cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A settled state.
    Stable(VmState),
    /// In between (starting, saving, restoring, stopping, snapshotting, ...): ask again later.
    Transitional(String),
    /// The guest is stuck (guru meditation): it needs a power-off.
    Stuck,
}

impl MachineInfo {
    pub fn parse(text: &str) -> Self {
        let text = truncate(text);
        let mut entries = BTreeMap::new();
        for line in text.lines() {
            let Some((key, value)) = split_key_value(line) else {
                continue;
            };
            entries.entry(key).or_insert(value);
        }
        Self { entries }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn uuid(&self) -> Option<&str> {
        self.get("UUID")
    }
    pub fn name(&self) -> Option<&str> {
        self.get("name")
    }
    pub fn raw_state(&self) -> Option<&str> {
        self.get("VMState")
    }
    pub fn log_folder(&self) -> Option<&str> {
        self.get("LogFldr")
    }
    pub fn config_file(&self) -> Option<&str> {
        self.get("CfgFile")
    }
    pub fn cpus(&self) -> Option<u32> {
        self.get("cpus")?.parse().ok()
    }
    pub fn memory_mb(&self) -> Option<u32> {
        self.get("memory")?.parse().ok()
    }
    pub fn execution_cap(&self) -> Option<u8> {
        self.get("cpuexecutioncap")?.parse().ok()
    }
    pub fn vrde_port(&self) -> Option<u16> {
        self.get("vrdeport")?.parse().ok()
    }
    /// The medium in a slot, e.g. `medium("SATA", 1, 0)`; `None` for an empty slot.
    pub fn medium(&self, controller: &str, port: u8, device: u8) -> Option<&str> {
        self.get(&format!("{controller}-{port}-{device}"))
            .filter(|v| *v != "none" && *v != "emptydrive")
    }
    /// NAT port-forward rules of NIC 1 as `(name, proto, host ip, host port, guest ip, guest port)`.
    pub fn forwards(&self) -> Vec<NatRule> {
        (0..)
            .map_while(|i| self.get(&format!("Forwarding({i})")))
            .filter_map(NatRule::parse)
            .collect()
    }

    /// The observed state, or `None` when the output has no `VMState` line.
    pub fn observed(&self) -> Option<Observed> {
        self.raw_state().map(classify_state)
    }
}

/// One `Forwarding(n)` entry: `name,tcp,127.0.0.1,18200,,80`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRule {
    pub name: String,
    pub protocol: String,
    pub host_ip: String,
    pub host_port: u16,
    pub guest_ip: String,
    pub guest_port: u16,
}

impl NatRule {
    pub fn parse(text: &str) -> Option<Self> {
        let f: Vec<&str> = text.split(',').collect();
        let [name, protocol, host_ip, host_port, guest_ip, guest_port] = f.as_slice() else {
            return None;
        };
        Some(Self {
            name: name.to_string(),
            protocol: protocol.to_string(),
            host_ip: host_ip.to_string(),
            host_port: host_port.parse().ok()?,
            guest_ip: guest_ip.to_string(),
            guest_port: guest_port.parse().ok()?,
        })
    }
}

/// Maps VirtualBox's machine-readable state names (`VMState=`) onto ours. Unknown names count as
/// transitional, never as a state we did not see (the original's bug, spec §2.4).
pub fn classify_state(raw: &str) -> Observed {
    match raw {
        "poweroff" | "aborted" | "teleported" => Observed::Stable(VmState::PoweredOff),
        "saved" | "aborted-saved" => Observed::Stable(VmState::Saved),
        "paused" => Observed::Stable(VmState::Paused),
        "running" => Observed::Stable(VmState::Running),
        "gurumeditation" | "stuck" => Observed::Stuck,
        other => Observed::Transitional(other.to_string()),
    }
}

/// One `list vms` line: `"name" {uuid}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVm {
    pub name: String,
    pub uuid: String,
}

/// Parses `list vms`; `<inaccessible>` entries and malformed lines are skipped.
pub fn parse_list_vms(text: &str) -> Vec<ListedVm> {
    truncate(text)
        .lines()
        .filter_map(|line| {
            let line = line.trim_end();
            let rest = line.strip_prefix('"')?;
            let (name, tail) = rest.rsplit_once("\" {")?;
            let uuid = tail.strip_suffix('}')?;
            (name != "<inaccessible>").then(|| ListedVm {
                name: name.to_string(),
                uuid: uuid.to_string(),
            })
        })
        .collect()
}

/// The UUID from `createvm` output (`UUID: 1234...`).
pub fn parse_created_uuid(text: &str) -> Option<String> {
    truncate(text)
        .lines()
        .find_map(|l| l.trim().strip_prefix("UUID:").map(|u| u.trim().to_string()))
        .filter(|u| !u.is_empty())
}

/// `getextradata` prints `Value: <v>` or `No value set!`.
pub fn parse_extradata(text: &str) -> Option<String> {
    truncate(text)
        .lines()
        .find_map(|l| l.strip_prefix("Value: ").map(|v| v.trim_end().to_string()))
}

/// A VirtualBox version: `7.2.22_Debianr175245` → 7.2.22.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub build: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// The oldest VirtualBox we drive (the command set used here exists since 6.1).
pub const MIN_VERSION: Version = Version {
    major: 6,
    minor: 1,
    build: 0,
};

/// Parses the last non-empty stdout line of `VBoxManage --version` (earlier lines may be warnings).
pub fn parse_version(stdout: &str) -> Option<Version> {
    let line = truncate(stdout)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())?;
    let mut parts = line.splitn(3, '.');
    let major = leading_number(parts.next()?)?;
    let minor = leading_number(parts.next()?)?;
    let build = parts.next().and_then(leading_number).unwrap_or(0);
    Some(Version {
        major,
        minor,
        build,
    })
}

fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Does VBoxManage's output say the kernel driver is missing (VMs cannot run)?
pub fn driver_missing(output: &str) -> bool {
    output.contains("vboxdrv")
        && (output.contains("does not exist") || output.contains("not loaded"))
}

fn truncate(text: &str) -> &str {
    if text.len() <= MAX_PARSE_BYTES {
        return text;
    }
    let mut end = MAX_PARSE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Splits `key=value` where either side may be double-quoted with `\"`, `\\` and `\n` escapes.
fn split_key_value(line: &str) -> Option<(String, String)> {
    let (key, rest) = if let Some(stripped) = line.strip_prefix('"') {
        let (key, used) = unquote(stripped)?;
        (key, stripped[used..].strip_prefix('=')?)
    } else {
        let (k, v) = line.split_once('=')?;
        (k.to_string(), v)
    };
    let value = match rest.strip_prefix('"') {
        Some(q) => unquote(q)?.0,
        None => rest.to_string(),
    };
    Some((key, value))
}

/// Reads a quoted string whose opening quote is already consumed; returns it and the bytes used
/// (including the closing quote).
fn unquote(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// The `Type:` line of `showmediuminfo` (`normal (base)`, `multiattach`, ...).
pub fn parse_medium_type(text: &str) -> Option<String> {
    truncate(text)
        .lines()
        .find_map(|l| l.strip_prefix("Type:").map(|v| v.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_keys_values_and_escapes() {
        let info = MachineInfo::parse("name=\"a \\\"b\\\"\"\n\"SATA-1-0\"=\"/x/ctx.iso\"\ncpus=2\nbroken line\nname=\"second\"\n");
        assert_eq!(info.name(), Some("a \"b\""));
        assert_eq!(info.medium("SATA", 1, 0), Some("/x/ctx.iso"));
        assert_eq!(info.cpus(), Some(2));
        assert_eq!(
            info.entries.len(),
            3,
            "first occurrence of a key wins, junk skipped"
        );
    }

    #[test]
    fn unknown_states_are_transitional_not_a_state() {
        assert_eq!(
            classify_state("running"),
            Observed::Stable(VmState::Running)
        );
        assert_eq!(
            classify_state("aborted"),
            Observed::Stable(VmState::PoweredOff)
        );
        assert_eq!(
            classify_state("aborted-saved"),
            Observed::Stable(VmState::Saved)
        );
        assert_eq!(classify_state("gurumeditation"), Observed::Stuck);
        assert_eq!(
            classify_state("saving"),
            Observed::Transitional("saving".into())
        );
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("7.2.22_Debianr175245\n"),
            Some(Version {
                major: 7,
                minor: 2,
                build: 22
            })
        );
        assert_eq!(
            parse_version("4.3.30r101610"),
            Some(Version {
                major: 4,
                minor: 3,
                build: 30
            })
        );
        assert_eq!(
            parse_version("6.1"),
            Some(Version {
                major: 6,
                minor: 1,
                build: 0
            })
        );
        assert_eq!(parse_version("garbage"), None);
        assert!(parse_version("6.0.24r139119").unwrap() < MIN_VERSION);
        assert!(parse_version("6.1.0r1").unwrap() >= MIN_VERSION);
    }

    #[test]
    fn list_vms_skips_inaccessible_and_junk() {
        let vms = parse_list_vms(
            "\"a b\" {0e3b2a49-0000-4000-8000-000000000001}\n\"<inaccessible>\" {x}\nnoise\n",
        );
        assert_eq!(
            vms,
            vec![ListedVm {
                name: "a b".into(),
                uuid: "0e3b2a49-0000-4000-8000-000000000001".into()
            }]
        );
    }

    #[test]
    fn oversized_output_is_cut_not_parsed_whole() {
        let big = "k=v\n".repeat(MAX_PARSE_BYTES);
        let info = MachineInfo::parse(&big);
        assert_eq!(info.get("k"), Some("v"));
    }
}
