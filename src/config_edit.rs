//! Editing the config file in place: `vh s3-gateway enable` flips one value and leaves the
//! operator's comments, key order and every other key exactly as they were.
//!
//! The edit works on lines rather than on a parsed tree, since a YAML round trip through serde
//! would drop comments. The result is parsed and validated before it replaces the file, and the
//! replacement is atomic (temp file, fsync, rename).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};

use crate::config::Config;

/// Sets `section.key: value` in YAML `text`, adding the key or the section if they are missing.
///
/// # Errors
/// When the section is written in a form this editor does not rewrite (flow style, `{...}`).
pub fn set_scalar(text: &str, section: &str, key: &str, value: &str) -> anyhow::Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|line| {
        line.strip_prefix(section)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|rest| {
                let rest = rest.trim();
                rest.is_empty() || rest.starts_with('#')
            })
    });
    let Some(header) = header else {
        if lines
            .iter()
            .any(|line| line.starts_with(&format!("{section}:")))
        {
            bail!(
                "the `{section}` section is written in flow style; edit `{section}.{key}` by hand"
            );
        }
        let mut out = text.to_owned();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{section}:\n  {key}: {value}\n"));
        return Ok(out);
    };

    let body_end = lines[header + 1..]
        .iter()
        .position(|line| {
            !line.trim().is_empty()
                && !line.starts_with([' ', '\t'])
                && !line.trim_start().starts_with('#')
        })
        .map_or(lines.len(), |offset| header + 1 + offset);
    let indent = lines[header + 1..body_end]
        .iter()
        .find(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map_or("  ".to_owned(), |line| {
            line[..line.len() - line.trim_start().len()].to_owned()
        });

    let mut out: Vec<String> = lines.iter().map(|line| (*line).to_owned()).collect();
    let existing = (header + 1..body_end).find(|&i| {
        let line = lines[i];
        line.starts_with(&indent)
            && !line[indent.len()..].starts_with([' ', '\t'])
            && line[indent.len()..]
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
    });
    match existing {
        Some(i) => {
            let line = lines[i];
            // Keep a trailing comment with the spacing before it.
            let comment = line.find(" #").map_or("", |at| {
                let start = line[..=at].trim_end().len();
                &line[start..]
            });
            out[i] = format!("{indent}{key}: {value}{comment}");
        }
        None => out.insert(header + 1, format!("{indent}{key}: {value}")),
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') || text.is_empty() {
        joined.push('\n');
    }
    Ok(joined)
}

/// Sets `s3_gateway.enabled` in the config file at `path` (creating the file if needed) and
/// returns the new config.
///
/// # Errors
/// The file can't be read or written, or the edited file would not be valid.
pub fn set_gateway_enabled(path: &Path, enabled: bool) -> anyhow::Result<Config> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => {
            return Err(err).with_context(|| format!("read config file {}", path.display()));
        }
    };
    let edited = set_scalar(
        &text,
        "s3_gateway",
        "enabled",
        if enabled { "true" } else { "false" },
    )?;
    let config = Config::parse(&edited).with_context(|| {
        format!(
            "the edited config file {} would not be valid",
            path.display()
        )
    })?;
    write_atomically(path, edited.as_bytes())
        .with_context(|| format!("write config file {}", path.display()))?;
    Ok(config)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config.yaml")
    ));
    let mut file = std::fs::File::create(&tmp)?;
    if let Ok(meta) = std::fs::metadata(path) {
        file.set_permissions(meta.permissions())?;
    }
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_the_value_and_keeps_everything_else() {
        let text = "# node config\ndata_dir: /srv/vh   # big disk\ns3_gateway:\n  # listener\n  host: 127.0.0.1\n  enabled: false  # off for now\n  port: 39000\nkeys:\n  provider: software\n";
        let out = set_scalar(text, "s3_gateway", "enabled", "true").unwrap();
        assert_eq!(
            out,
            text.replace(
                "enabled: false  # off for now",
                "enabled: true  # off for now"
            )
        );
    }

    #[test]
    fn adds_missing_key_or_section() {
        let out = set_scalar(
            "s3_gateway:\n    port: 1234\n",
            "s3_gateway",
            "enabled",
            "true",
        )
        .unwrap();
        assert_eq!(out, "s3_gateway:\n    enabled: true\n    port: 1234\n");
        let out = set_scalar("data_dir: /x\n", "s3_gateway", "enabled", "true").unwrap();
        assert_eq!(out, "data_dir: /x\ns3_gateway:\n  enabled: true\n");
        assert_eq!(
            set_scalar("", "s3_gateway", "enabled", "true").unwrap(),
            "s3_gateway:\n  enabled: true\n"
        );
        let nested = "s3_gateway:\n  multipart:\n    enabled: x\n  port: 1\n";
        let out = set_scalar(nested, "s3_gateway", "enabled", "true").unwrap();
        assert_eq!(
            out,
            "s3_gateway:\n  enabled: true\n  multipart:\n    enabled: x\n  port: 1\n"
        );
        assert!(set_scalar("s3_gateway: {port: 1}\n", "s3_gateway", "enabled", "true").is_err());
    }

    #[test]
    fn edited_file_round_trips_through_the_parser() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "# mine\ns3_gateway:\n  host: 127.0.0.1\n").unwrap();
        let config = set_gateway_enabled(&path, true).unwrap();
        assert!(config.s3_gateway.enabled);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("# mine\n")
        );
        let config = set_gateway_enabled(&path, false).unwrap();
        assert!(!config.s3_gateway.enabled);
    }
}
