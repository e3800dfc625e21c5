//! Crashes: the node is killed with SIGKILL while programs write and fsync through the mount,
//! then started again on the same data.
//!
//! What must hold afterwards, file by file, where "acknowledged" means the writer's `fsync`
//! returned success before the kill:
//! - a file with an acknowledged version holds exactly that version, or, when the writer was
//!   rewriting it (`O_TRUNC`) at the kill, the whole new version or nothing (empty);
//! - a new file whose first version was not acknowledged is absent, empty, or whole;
//! - the database-like file, rewritten in place at random offsets with an `fdatasync` after
//!   each generation of writes, keeps its size; every byte outside the generation in flight at
//!   the kill is the acknowledged one, and every byte inside it is either the acknowledged or
//!   the new one;
//! - files of earlier rounds are untouched; there is no other entry; and every file reads back
//!   in full, without error, through the mount and over S3 GET alike.
//!
//! Anything else is a torn file. A SQLite database goes through the same crash, with the
//! guarantees SQLite itself gives on a filesystem that keeps its fsync promises.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use rustix::fs::{Mode, OFlags};
use sha2::{Digest as _, Sha256};

use crate::common::{TestNode, wait_for};
use crate::mount::support::{
    S3, list, mounted_node, read, run_with_input, seeded_bytes, sha256_hex, test_seed,
    writable_vault,
};

/// Kill-and-restart rounds of the file test.
const ROUNDS: u64 = 3;
/// The database-like file; its size never changes.
const DB_NAME: &str = "db.bin";
/// Its size: many segments, and not a whole number of them.
const DB_SIZE: usize = (1 << 20) + 12_345;
/// Before the kill, each writer has had at least this many fsyncs acknowledged.
const MIN_ACKED: u64 = 3;
/// How long the writers may take to get there.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(90);
/// Rows per SQLite transaction.
const SQLITE_ROWS: u64 = 20;
/// SQLite transactions acknowledged before the kill.
const SQLITE_MIN_COMMITS: u64 = 20;

/// What the file writer got acknowledged, and what it was doing when it stopped.
#[derive(Clone, Debug, Default)]
struct FileProgress {
    /// File name → the version whose fsync returned.
    acked: BTreeMap<String, u32>,
    /// The version being written at the stop.
    in_flight: Option<(String, u32)>,
    /// Why the writer stopped: once the node is killed, an error is expected.
    stopped: Option<String>,
}

/// What the database writer got acknowledged.
#[derive(Clone, Debug, Default)]
struct DbProgress {
    /// The last generation whose fdatasync returned (0: none this round).
    acked: u64,
    /// The generation being written at the stop.
    in_flight: Option<u64>,
    /// Why the writer stopped.
    stopped: Option<String>,
}

/// What the vault holds for sure after a verified round.
struct Durable {
    /// File name → SHA-256 of its content.
    files: BTreeMap<String, String>,
    /// The database file's content.
    db: Vec<u8>,
}

#[test]
fn fsynced_writes_survive_sigkill_and_no_file_is_torn() {
    let Some(mut node) = mounted_node("crash") else {
        return;
    };
    let seed = test_seed("VH_MOUNT_CRASH_SEED");
    let bucket = "crash";
    let vault = writable_vault(&node, bucket);
    let s3 = S3::new(&node);
    let initial_db = seeded_bytes(seed, DB_SIZE);
    let db = File::create(vault.join(DB_NAME)).expect("create the database file in the mount");
    db.write_all_at(&initial_db, 0)
        .expect("write the database file");
    db.sync_all().expect("fsync the database file");
    drop(db);
    let mut durable = Durable {
        files: BTreeMap::new(),
        db: initial_db,
    };

    for round in 0..ROUNDS {
        let round_seed = seed.wrapping_add(round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (files, db) = write_until_killed(&mut node, &vault, round, round_seed);
        node.start_again();
        let context = format!(
            "seed {seed}, round {round}; the file writer stopped with {:?} writing {:?}, the \
             database writer with {:?} in generation {:?} (acknowledged {})",
            files.stopped, files.in_flight, db.stopped, db.in_flight, db.acked
        );
        verify_round(
            &s3,
            bucket,
            &node.vault_path(bucket),
            &mut durable,
            &files,
            &db,
            round_seed,
        )
        .unwrap_or_else(|problem| panic!("{problem}\n{context}\n{}", node.log_report()));
    }
}

#[test]
fn sqlite_commits_survive_sigkill_of_the_node() {
    let Some(mut node) = mounted_node("sqlite crash") else {
        return;
    };
    let seed = test_seed("VH_MOUNT_CRASH_SEED");
    let vault = writable_vault(&node, "crash-sqlite");
    let db = vault.join("app.db");
    run_with_input(
        Command::new("sqlite3").args(["-bail", "-batch"]).arg(&db),
        b"CREATE TABLE t(n INTEGER NOT NULL, i INTEGER NOT NULL, body TEXT NOT NULL, \
          PRIMARY KEY (n, i));",
        "create the table",
    );

    // stdbuf: the shell's stdout is a pipe, and each acknowledgement must leave at once.
    let stderr_path = node.root().join("sqlite3.stderr");
    let stderr = File::create(&stderr_path).expect("create sqlite3's stderr file");
    let mut shell = Command::new("stdbuf")
        .args(["-oL", "sqlite3", "-bail", "-batch"])
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start sqlite3 under stdbuf");
    let pid = shell.id().to_string();
    let mut stdin = shell.stdin.take().expect("stdin is piped");
    let feeder = thread::spawn(move || {
        for n in 1u64.. {
            if stdin.write_all(sqlite_transaction(n).as_bytes()).is_err() {
                return;
            }
        }
    });
    let acked = Arc::new(AtomicU64::new(0));
    let stdout = shell.stdout.take().expect("stdout is piped");
    let reader = thread::spawn({
        let acked = Arc::clone(&acked);
        move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("committed ").and_then(|n| n.parse().ok()) {
                    acked.store(n, Ordering::SeqCst);
                }
            }
        }
    });

    wait_for(
        PROGRESS_TIMEOUT,
        &format!("{SQLITE_MIN_COMMITS} SQLite commits through the mount"),
        || {
            if let Ok(Some(status)) = shell.try_wait() {
                panic!(
                    "sqlite3 exited with {status} after {} commits, before the kill; it \
                     said: {}\n{}",
                    acked.load(Ordering::SeqCst),
                    std::fs::read_to_string(&stderr_path).unwrap_or_default(),
                    node.log_report()
                );
            }
            (acked.load(Ordering::SeqCst) >= SQLITE_MIN_COMMITS).then_some(())
        },
        || node.log_report(),
    );
    thread::sleep(Duration::from_millis(
        StdRng::seed_from_u64(seed).random_range(0..300),
    ));
    // Freeze the shell first, so nothing it does after the node dies can reach the bare mount
    // point; then the node dies mid-transaction, then the shell.
    signal(&pid, "STOP");
    node.kill9();
    signal(&pid, "KILL");
    let _ = shell.wait();
    let _ = feeder.join();
    reader.join().expect("the stdout reader does not panic");
    let acked = acked.load(Ordering::SeqCst);

    node.start_again();
    let query = "PRAGMA integrity_check;
                 SELECT count(*), coalesce(max(n), 0), count(DISTINCT n) FROM t;";
    let out = run_with_input(
        Command::new("sqlite3").args(["-bail", "-batch"]).arg(&db),
        query.as_bytes(),
        "integrity check after the crash",
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("ok"),
        "PRAGMA integrity_check after the crash:\n{out}"
    );
    let numbers: Vec<u64> = lines
        .next()
        .unwrap_or_default()
        .split('|')
        .filter_map(|n| n.parse().ok())
        .collect();
    let [count, max_n, distinct] = numbers[..] else {
        panic!("unexpected query output after the crash:\n{out}");
    };
    assert!(
        max_n >= acked && max_n <= acked + 1,
        "seed {seed}: {acked} transactions were acknowledged before the kill, the database \
         holds up to number {max_n} (must be {acked} or, for the one in flight, {})",
        acked + 1
    );
    assert_eq!(
        (count, distinct),
        (max_n * SQLITE_ROWS, max_n),
        "seed {seed}: every committed transaction must be whole ({SQLITE_ROWS} rows each)"
    );

    // The recovered file is what S3 serves, and a copy passes the same checks.
    let s3 = S3::new(&node);
    let served = s3.get_ok("crash-sqlite", "app.db");
    assert_eq!(
        sha256_hex(&served),
        sha256_hex(&read(&db)),
        "app.db over S3 against the mount"
    );
    let copy = node.root().join("local-copy.db");
    std::fs::write(&copy, &served).expect("write the downloaded copy");
    let copy_out = run_with_input(
        Command::new("sqlite3").args(["-bail", "-batch"]).arg(&copy),
        query.as_bytes(),
        "integrity check of the copy downloaded over S3",
    );
    assert_eq!(
        copy_out, out,
        "the copy downloaded over S3 answers differently"
    );
}

/// Runs the file writer and the database writer on the mount until both have fsyncs
/// acknowledged, waits a random moment, kills the node, and returns what each writer knew.
fn write_until_killed(
    node: &mut TestNode,
    vault: &Path,
    round: u64,
    seed: u64,
) -> (FileProgress, DbProgress) {
    // The writers open files relative to this descriptor: once the node is dead and its mount
    // detached, they get errors instead of writing into the bare mount point.
    let dir = rustix::fs::open(
        vault,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open the vault directory");
    let files = Arc::new(Mutex::new(FileProgress::default()));
    let db = Arc::new(Mutex::new(DbProgress::default()));
    let stop = Arc::new(AtomicBool::new(false));

    let file_writer = thread::spawn({
        let (dir, files, stop) = (dir.try_clone(), Arc::clone(&files), Arc::clone(&stop));
        move || {
            let dir = dir.expect("duplicate the directory descriptor");
            let result = write_files(&dir, round, seed, &files, &stop);
            lock(&files).stopped = Some(result.err().unwrap_or_else(|| "stop".to_owned()));
        }
    });
    let db_writer = thread::spawn({
        let (dir, db, stop) = (dir.try_clone(), Arc::clone(&db), Arc::clone(&stop));
        move || {
            let dir = dir.expect("duplicate the directory descriptor");
            let result = rewrite_db(&dir, seed, &db, &stop);
            lock(&db).stopped = Some(result.err().unwrap_or_else(|| "stop".to_owned()));
        }
    });

    wait_for(
        PROGRESS_TIMEOUT,
        &format!("both writers to have {MIN_ACKED} fsyncs acknowledged (round {round})"),
        || {
            let (f, d) = (lock(&files).clone(), lock(&db).clone());
            let early = f.stopped.clone().or(d.stopped.clone());
            assert!(
                early.is_none(),
                "a writer stopped before the kill: {early:?}\n{}",
                node.log_report()
            );
            (f.acked.len() as u64 >= MIN_ACKED && d.acked >= MIN_ACKED).then_some(())
        },
        || node.log_report(),
    );
    let pause = StdRng::seed_from_u64(seed).random_range(0..500);
    thread::sleep(Duration::from_millis(pause));
    node.kill9();
    stop.store(true, Ordering::SeqCst);
    file_writer.join().expect("the file writer does not panic");
    db_writer
        .join()
        .expect("the database writer does not panic");
    drop(dir);
    let files = lock(&files).clone();
    let db = lock(&db).clone();
    (files, db)
}

/// Writes new files `r{round}-f{i}` and, every third step, a new version of one written earlier
/// this round; each version is fsynced and acknowledged before the next begins.
fn write_files(
    dir: &OwnedFd,
    round: u64,
    seed: u64,
    progress: &Mutex<FileProgress>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xF11E);
    for i in 0u32.. {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let rewrite = i % 3 == 2;
        let (name, version) = if rewrite {
            let name = format!("r{round}-f{:04}", rng.random_range(0..i));
            let version = lock(progress).acked.get(&name).map_or(0, |v| v + 1);
            (name, version)
        } else {
            (format!("r{round}-f{i:04}"), 0)
        };
        lock(progress).in_flight = Some((name.clone(), version));
        let data = file_version(seed, &name, version);
        let mut flags = OFlags::WRONLY | OFlags::CLOEXEC;
        flags |= if version == 0 {
            OFlags::CREATE | OFlags::EXCL
        } else {
            OFlags::TRUNC
        };
        let fd = rustix::fs::openat(dir, name.as_str(), flags, Mode::from_raw_mode(0o644))
            .map_err(|e| format!("open {name}: {e}"))?;
        let mut file = File::from(fd);
        for chunk in data.chunks(rng.random_range(4096..300_000)) {
            file.write_all(chunk)
                .map_err(|e| format!("write {name} v{version}: {e}"))?;
        }
        file.sync_all()
            .map_err(|e| format!("fsync {name} v{version}: {e}"))?;
        let mut state = lock(progress);
        state.acked.insert(name, version);
        state.in_flight = None;
    }
    Ok(())
}

/// Rewrites the database file in place, generation after generation, with an fdatasync after
/// each, as a database commits.
fn rewrite_db(
    dir: &OwnedFd,
    seed: u64,
    progress: &Mutex<DbProgress>,
    stop: &AtomicBool,
) -> Result<(), String> {
    let fd = rustix::fs::openat(dir, DB_NAME, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("open {DB_NAME}: {e}"))?;
    let file = File::from(fd);
    for generation in 1u64.. {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        lock(progress).in_flight = Some(generation);
        for (offset, data) in generation_writes(seed, generation) {
            file.write_all_at(&data, offset)
                .map_err(|e| format!("pwrite generation {generation}: {e}"))?;
        }
        file.sync_data()
            .map_err(|e| format!("fdatasync generation {generation}: {e}"))?;
        let mut state = lock(progress);
        state.acked = generation;
        state.in_flight = None;
    }
    Ok(())
}

/// The writes of one database generation: one to six patches of up to 20,000 bytes, a third
/// of them across a 64 KiB segment boundary.
fn generation_writes(seed: u64, generation: u64) -> Vec<(u64, Vec<u8>)> {
    let mut rng = StdRng::seed_from_u64(seed ^ generation.wrapping_mul(0x2545_F491_4F6C_DD1D));
    (0..rng.random_range(1..=6))
        .map(|_| {
            let len = rng.random_range(1..20_000usize);
            let offset = if rng.random_bool(0.33) {
                let boundary = rng.random_range(1..DB_SIZE / 65_536) * 65_536;
                boundary - len / 2
            } else {
                rng.random_range(0..DB_SIZE - len)
            };
            (offset as u64, seeded_bytes(rng.next_u64(), len))
        })
        .collect()
}

/// Version `version` of file `name`: between empty and 1.5 MiB, fixed by the seed.
fn file_version(seed: u64, name: &str, version: u32) -> Vec<u8> {
    let digest = Sha256::digest(format!("{seed}/{name}/{version}"));
    let mut rng = StdRng::from_seed(digest.into());
    let len = match rng.random_range(0..5) {
        0 => rng.random_range(0..100),
        1 => rng.random_range(100..70_000),
        _ => rng.random_range(70_000..1_500_000),
    };
    seeded_bytes(rng.next_u64(), len)
}

/// Checks the vault against what the writers knew (see the module docs), then records what it
/// now holds as the durable state for the next round.
fn verify_round(
    s3: &S3,
    bucket: &str,
    vault: &Path,
    durable: &mut Durable,
    files: &FileProgress,
    db: &DbProgress,
    seed: u64,
) -> Result<(), String> {
    let names = list(vault);
    let mut allowed: BTreeSet<&str> = durable.files.keys().map(String::as_str).collect();
    allowed.extend(files.acked.keys().map(String::as_str));
    allowed.extend(files.in_flight.iter().map(|(name, _)| name.as_str()));
    allowed.insert(DB_NAME);
    if let Some(stray) = names.iter().find(|n| !allowed.contains(n.as_str())) {
        return Err(format!("unexpected entry {stray} in the vault: {names:?}"));
    }

    let mut contents = BTreeMap::new();
    for name in &names {
        let path = vault.join(name);
        let data = std::fs::read(&path)
            .map_err(|e| format!("reading {name} through the mount after the restart: {e}"))?;
        let served = s3.get(bucket, name);
        if served.status != 200 || served.body != data {
            return Err(format!(
                "GET {name} gave {} with {} bytes, the mount reads {} bytes (equal: {})",
                served.status,
                served.body.len(),
                data.len(),
                served.body == data
            ));
        }
        contents.insert(name.clone(), data);
    }
    let mut keys = s3.file_keys(bucket);
    keys.sort();
    if keys != names {
        return Err(format!("S3 lists {keys:?}, the mount shows {names:?}"));
    }

    for (name, sha) in &durable.files {
        let found = contents.get(name).map(|d| sha256_hex(d));
        if found.as_ref() != Some(sha) {
            return Err(format!(
                "{name}, verified in an earlier round, changed or vanished"
            ));
        }
    }
    check_files(&contents, files, seed)?;
    let found_db = contents
        .get(DB_NAME)
        .ok_or_else(|| format!("{DB_NAME} vanished"))?;
    check_db(found_db, &durable.db, db, seed)?;

    durable.db.clone_from(found_db);
    durable.files = contents
        .iter()
        .filter(|(name, _)| name.as_str() != DB_NAME)
        .map(|(name, data)| (name.clone(), sha256_hex(data)))
        .collect();
    Ok(())
}

/// The per-file rules of the module docs for the files this round wrote.
fn check_files(
    contents: &BTreeMap<String, Vec<u8>>,
    files: &FileProgress,
    seed: u64,
) -> Result<(), String> {
    for (name, &version) in &files.acked {
        let found = contents.get(name);
        let acked = file_version(seed, name, version);
        let rewriting = files
            .in_flight
            .as_ref()
            .filter(|(n, v)| n == name && *v == version + 1);
        let ok = match (found, rewriting) {
            (Some(data), _) if *data == acked => true,
            (Some(data), Some((_, next))) => {
                data.is_empty() || *data == file_version(seed, name, *next)
            }
            _ => false,
        };
        if !ok {
            return Err(format!(
                "{name}: version {version} ({} bytes) was acknowledged, found {}{}",
                acked.len(),
                describe(found),
                rewriting.map_or(String::new(), |(_, v)| format!(
                    " (version {v} was being written)"
                ))
            ));
        }
    }
    if let Some((name, version)) = &files.in_flight
        && !files.acked.contains_key(name)
    {
        let found = contents.get(name);
        let whole = file_version(seed, name, *version);
        let ok = found.is_none_or(|data| data.is_empty() || *data == whole);
        if !ok {
            return Err(format!(
                "{name}: its first version ({} bytes) was not acknowledged; it may be absent, \
                 empty or whole, found {}",
                whole.len(),
                describe(found)
            ));
        }
    }
    Ok(())
}

/// The database rule of the module docs.
fn check_db(found: &[u8], base: &[u8], db: &DbProgress, seed: u64) -> Result<(), String> {
    if found.len() != DB_SIZE {
        return Err(format!(
            "{DB_NAME} is {} bytes after the crash, it never stopped being {DB_SIZE}",
            found.len()
        ));
    }
    let mut acked = base.to_vec();
    for generation in 1..=db.acked {
        apply(&mut acked, &generation_writes(seed, generation));
    }
    let mut next = acked.clone();
    if let Some(generation) = db.in_flight {
        apply(&mut next, &generation_writes(seed, generation));
    }
    let torn = (0..DB_SIZE).find(|&i| found[i] != acked[i] && found[i] != next[i]);
    match torn {
        None => Ok(()),
        Some(at) => Err(format!(
            "{DB_NAME}: byte {at} is {:#04x}; generation {} was acknowledged ({:#04x} there) and \
             {:?} was in flight ({:#04x})",
            found[at], db.acked, acked[at], db.in_flight, next[at]
        )),
    }
}

fn apply(content: &mut [u8], writes: &[(u64, Vec<u8>)]) {
    for (offset, data) in writes {
        let start = usize::try_from(*offset).expect("offsets fit in usize");
        content[start..start + data.len()].copy_from_slice(data);
    }
}

fn describe(found: Option<&Vec<u8>>) -> String {
    match found {
        None => "no file".to_owned(),
        Some(data) => format!("{} bytes (sha256 {})", data.len(), sha256_hex(data)),
    }
}

/// One SQLite transaction number `n`, followed by its acknowledgement line.
fn sqlite_transaction(n: u64) -> String {
    format!(
        "BEGIN;
         WITH RECURSIVE x(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM x WHERE i < {SQLITE_ROWS})
         INSERT INTO t(n, i, body) SELECT {n}, i, hex(randomblob(200)) FROM x;
         COMMIT;
         SELECT 'committed ' || {n};\n"
    )
}

fn signal(pid: &str, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// The lock of a writer's progress; a writer that panicked already failed the test.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
