//! Printing the daemon's answers: JSON with `--json`, aligned text otherwise. Output is the same
//! whether stdout is a terminal or a pipe.

use std::process::ExitCode;

use time::OffsetDateTime;
use time::macros::format_description;
use vh_cli::protocol::{
    BucketDetail, CredentialInfo, NewCredential, NodeStatus, Output, ServiceStatus, VaultDetail,
};

/// Prints `output` and returns the exit code it implies.
pub fn print(output: &Output, json: bool) -> ExitCode {
    if json {
        let value = match output {
            Output::Done { message } => serde_json::json!({ "message": message }),
            Output::Status(status) => serde_json::json!(status),
            Output::Gateway(service) | Output::Service(service) => serde_json::json!(service),
            Output::NewCredential(credential) => serde_json::json!(credential),
            Output::Credentials(list) => serde_json::json!(list),
            Output::Credential(credential) => serde_json::json!(credential),
            Output::Bucket(bucket) => serde_json::json!(bucket),
            Output::BucketDetail(bucket) => serde_json::json!(bucket),
            Output::Buckets(list) => serde_json::json!(list),
            Output::Vault(vault) => serde_json::json!(vault),
            Output::VaultDetail(vault) => serde_json::json!(vault),
            Output::Vaults(list) => serde_json::json!(list),
            Output::Version(version) => serde_json::json!(version),
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
        Output::NewCredential(credential) => print_new_credential(credential),
        Output::Credentials(list) => print_credentials(list),
        Output::Credential(credential) => print_credential(credential),
        Output::Bucket(b) => println!(
            "bucket {} on vault {} ({}), mode {}",
            b.name, b.vault_name, b.vault_id, b.mode
        ),
        Output::BucketDetail(detail) => print_bucket(detail),
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
        Output::Vault(v) if v.mounted => println!("vault {} (id {})", v.name, v.id),
        Output::Vault(v) => println!(
            "vault {} (id {}), hidden from the mount (`vh vault mount {}` shows it)",
            v.name, v.id, v.name
        ),
        Output::VaultDetail(detail) => print_vault(detail),
        Output::Vaults(list) => {
            println!(
                "{:<8} {:<32} {:<20} {:<8} BUCKETS",
                "ID", "NAME", "CREATED (UTC)", "MOUNTED"
            );
            for v in list {
                println!(
                    "{:<8} {:<32} {:<20} {:<8} {}",
                    v.id,
                    v.name,
                    time(v.created_at),
                    v.mounted,
                    v.buckets.join(",")
                );
            }
        }
        Output::Version(version) => println!(
            "node {} (control protocol {})",
            version.version, version.protocol
        ),
    }
    exit_code(output)
}

fn print_new_credential(credential: &NewCredential) {
    println!("name:              {}", credential.name);
    println!("access_key_id:     {}", credential.access_key_id);
    println!("secret_access_key: {}", credential.secret_access_key);
    if let Some(description) = &credential.description {
        println!("description:       {description}");
    }
    println!("expires:           {}", utc(credential.expires_at));
    println!("The secret is shown only now; store it safely.");
}

fn print_credentials(list: &[CredentialInfo]) {
    println!(
        "{:<26} {:<20} {:<8} {:<20} {:<20} LAST USED (UTC)",
        "ACCESS KEY", "NAME", "STATE", "CREATED (UTC)", "EXPIRES (UTC)"
    );
    for c in list {
        println!(
            "{:<26} {:<20} {:<8} {:<20} {:<20} {}",
            c.access_key_id,
            c.name,
            c.state,
            time(c.created_at),
            or_never(c.expires_at),
            or_never(c.last_used_at)
        );
    }
}

fn print_credential(c: &CredentialInfo) {
    println!("access_key_id:  {}", c.access_key_id);
    println!("name:           {}", c.name);
    println!(
        "description:    {}",
        c.description.as_deref().unwrap_or("-")
    );
    println!("state:          {}", c.state);
    println!("created:        {} UTC", time(c.created_at));
    println!("expires:        {}", utc(c.expires_at));
    println!("last used:      {}", utc(c.last_used_at));
    if let Some(at) = c.revoked_at {
        println!("revoked:        {} UTC", time(at));
    }
}

fn print_bucket(detail: &BucketDetail) {
    let b = &detail.bucket;
    println!("bucket:         {}", b.name);
    println!("vault:          {} (id {})", b.vault_name, b.vault_id);
    println!("mode:           {}", b.mode);
    println!("api-exclusive:  {}", b.api_exclusive);
    println!("created:        {} UTC", time(b.created_at));
    println!("objects:        {}", detail.objects);
    println!("size:           {}", size(detail.bytes));
}

fn print_vault(detail: &VaultDetail) {
    let v = &detail.vault;
    let buckets = if v.buckets.is_empty() {
        "none".to_owned()
    } else {
        v.buckets.join(", ")
    };
    println!("id:        {}", v.id);
    println!("name:      {}", v.name);
    println!("created:   {} UTC", time(v.created_at));
    println!("buckets:   {buckets}");
    println!("mounted:   {}", v.mounted);
    println!("objects:   {}", detail.objects);
    println!("size:      {}", size(detail.bytes));
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

/// `YYYY-MM-DD HH:MM:SS` in UTC.
fn time(secs: u64) -> String {
    let at = i64::try_from(secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

/// A time in UTC for a table column, or `never`.
fn or_never(at: Option<u64>) -> String {
    at.map_or_else(|| "never".to_owned(), time)
}

/// A time with its zone, or `never`.
fn utc(at: Option<u64>) -> String {
    at.map_or_else(|| "never".to_owned(), |at| format!("{} UTC", time(at)))
}

/// `1.5 MiB (1572864 bytes)`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = None;
    let mut scale: u128 = 1;
    for name in UNITS {
        if u128::from(bytes) < scale * 1024 {
            break;
        }
        scale *= 1024;
        unit = Some(name);
    }
    match unit {
        None => format!("{bytes} bytes"),
        Some(name) => {
            let tenths = u128::from(bytes) * 10 / scale;
            format!("{}.{} {name} ({bytes} bytes)", tenths / 10, tenths % 10)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_render_in_binary_units_with_the_exact_count() {
        assert_eq!(size(0), "0 bytes");
        assert_eq!(size(1023), "1023 bytes");
        assert_eq!(size(1024), "1.0 KiB (1024 bytes)");
        assert_eq!(size(1_572_864), "1.5 MiB (1572864 bytes)");
        assert_eq!(size(u64::MAX), "16383.9 PiB (18446744073709551615 bytes)");
    }

    #[test]
    fn dates_render_in_utc() {
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00");
    }
}
