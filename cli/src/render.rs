//! Printing the daemon's answers: JSON with `--json`, aligned text otherwise. Output is the same
//! whether stdout is a terminal or a pipe.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use vh_cli::protocol::{NodeStatus, Output, ServiceStatus};

/// Prints `output` and returns the exit code it implies.
pub fn print(output: &Output, json: bool) -> ExitCode {
    if json {
        let value = match output {
            Output::Done { message } => serde_json::json!({ "message": message }),
            Output::Status(status) => serde_json::json!(status),
            Output::Gateway(service) | Output::Service(service) => serde_json::json!(service),
            Output::NewCredential(credential) => serde_json::json!(credential),
            Output::Credentials(list) => serde_json::json!(list),
            Output::Bucket(bucket) => serde_json::json!(bucket),
            Output::Buckets(list) => serde_json::json!(list),
            Output::Vault(vault) => serde_json::json!(vault),
            Output::Vaults(list) => serde_json::json!(list),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return exit_code(output);
    }
    match output {
        Output::Done { message } => println!("{message}"),
        Output::Status(status) => print_status(status),
        Output::Gateway(service) | Output::Service(service) => {
            print_services(std::slice::from_ref(service));
        }
        Output::NewCredential(credential) => {
            println!("name:              {}", credential.name);
            println!("access_key_id:     {}", credential.access_key_id);
            println!("secret_access_key: {}", credential.secret_access_key);
            println!("The secret is shown only now; store it safely.");
        }
        Output::Credentials(list) => {
            println!(
                "{:<28} {:<20} {:<22} STATE",
                "ACCESS KEY", "NAME", "CREATED"
            );
            for c in list {
                let state = if c.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<28} {:<20} {:<22} {state}",
                    c.access_key_id,
                    c.name,
                    time(c.created_at)
                );
            }
        }
        Output::Bucket(b) => println!(
            "bucket {} on vault {} ({}), mode {}",
            b.name, b.vault_name, b.vault_id, b.mode
        ),
        Output::Buckets(list) => {
            println!(
                "{:<32} {:<8} {:<24} {:<8} API-EXCLUSIVE",
                "BUCKET", "VAULT", "VAULT NAME", "MODE"
            );
            for b in list {
                println!(
                    "{:<32} {:<8} {:<24} {:<8} {}",
                    b.name, b.vault_id, b.vault_name, b.mode, b.api_exclusive
                );
            }
        }
        Output::Vault(v) => println!("vault {} (id {})", v.name, v.id),
        Output::Vaults(list) => {
            println!("{:<8} {:<32} {:<22} BUCKETS", "ID", "NAME", "CREATED");
            for v in list {
                println!(
                    "{:<8} {:<32} {:<22} {}",
                    v.id,
                    v.name,
                    time(v.created_at),
                    v.buckets.join(",")
                );
            }
        }
    }
    exit_code(output)
}

fn exit_code(output: &Output) -> ExitCode {
    let unhealthy = match output {
        Output::Status(status) => status.services.iter().any(is_unhealthy),
        Output::Gateway(service) => is_unhealthy(service),
        _ => false,
    };
    if unhealthy {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn is_unhealthy(service: &ServiceStatus) -> bool {
    service.enabled && !matches!(service.state.as_str(), "running" | "idle")
}

fn print_status(status: &NodeStatus) {
    println!("vaulthalla {}", status.version);
    println!("config:       {}", status.config_path);
    println!("data:         {}", status.data_dir);
    println!("master key:   {}", status.key_provider);
    println!(
        "vaults:       {}   buckets: {}",
        status.vaults, status.buckets
    );
    println!();
    print_services(&status.services);
}

fn print_services(services: &[ServiceStatus]) {
    println!(
        "{:<20} {:<11} {:<22} {:<20} {:>8} {:>9} {:>7}",
        "SERVICE", "STATE", "LISTEN", "STARTED", "RESTARTS", "REQUESTS", "ERRORS"
    );
    for s in services {
        let started = s.started_at.map(time).unwrap_or_else(|| "-".to_owned());
        let listen = s.listen.as_deref().unwrap_or("-");
        println!(
            "{:<20} {:<11} {:<22} {:<20} {:>8} {:>9} {:>7}",
            s.name, s.state, listen, started, s.restarts, s.requests, s.errors
        );
        if let Some(error) = &s.error {
            println!("  error: {error}");
        }
    }
}

fn time(secs: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(secs);
    httpdate_like(at)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, without pulling a date crate into `vh`.
fn httpdate_like(at: std::time::SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_render_in_utc() {
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00");
    }
}
