//! Rules for the names an operator or a client gives to buckets, vaults and credentials.

use crate::error::VaultError;

/// Checks a bucket name against S3's rules for new buckets: 3 to 63 characters of lowercase
/// letters, digits, `.` and `-`, starting and ending with a letter or digit, no `..`, and not
/// shaped like an IP address.
///
/// # Errors
/// `InvalidBucketName` naming the broken rule.
pub fn check_bucket_name(name: &str) -> Result<(), VaultError> {
    let refuse = |reason| {
        Err(VaultError::InvalidBucketName {
            name: name.to_owned(),
            reason,
        })
    };
    if !(3..=63).contains(&name.len()) {
        return refuse("a bucket name is 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return refuse("a bucket name holds only lowercase letters, digits, '.' and '-'");
    }
    let first_last_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !first_last_ok(name.as_bytes()[0]) || !first_last_ok(name.as_bytes()[name.len() - 1]) {
        return refuse("a bucket name starts and ends with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return refuse("a bucket name has no '..', '.-' or '-.'");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return refuse("a bucket name is not shaped like an IP address");
    }
    Ok(())
}

/// Checks the name of a vault or a credential: 1 to 64 characters of letters, digits, `.`, `_`
/// and `-`, so it is safe in a path, a shell and a log line.
///
/// # Errors
/// `InvalidName` naming the rule.
pub fn check_plain_name(name: &str) -> Result<(), VaultError> {
    let ok_len = (1..=64).contains(&name.len());
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok_len && ok_chars && !name.starts_with('.') {
        return Ok(());
    }
    Err(VaultError::InvalidName {
        name: name.to_owned(),
        reason: "use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.2024", "a1b", &"x".repeat(63)] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Upper",
            "-abc",
            "abc-",
            "a..b",
            "a_b",
            "192.168.1.1",
            &"x".repeat(64),
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_names_are_shell_and_path_safe() {
        assert!(check_plain_name("laptop-1").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_plain_name(bad).is_err(), "{bad}");
        }
    }
}
