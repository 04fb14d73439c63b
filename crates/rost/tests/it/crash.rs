//! Crash safety: SIGKILL a large commit at random moments; the repository must
//! stay consistent for both rost and ostree, and a rerun must complete.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{require_tool, rrepo, run_ok};

/// Small, dependency-free PRNG (xorshift64*): the seed is printed so a failure
/// can be replayed with `ROST_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn random_file(path: &Path, len: usize, rng: &mut Rng) {
    let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    std::fs::write(path, data).unwrap();
}

fn build_large_tree(root: &Path, rng: &mut Rng) {
    for d in 0..10 {
        let dir = root.join(format!("dir{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..40 {
            random_file(
                &dir.join(format!("f{f:03}")),
                512 + (rng.next() % 16_384) as usize,
                rng,
            );
        }
    }
    rewrite_some(root, rng);
}

/// Rewrites the large files (streaming write path) and a quarter of the small
/// ones, so the next commit has plenty of new objects to write.
fn rewrite_some(root: &Path, rng: &mut Rng) {
    for i in 0..4 {
        random_file(
            &root.join(format!("large{i}")),
            1_500_000 + i * 1_000_000,
            rng,
        );
    }
    for d in 0..10 {
        for f in (0..40).step_by(4) {
            random_file(
                &root.join(format!("dir{d:02}/f{f:03}")),
                512 + (rng.next() % 16_384) as usize,
                rng,
            );
        }
    }
}

/// Acceptance 4: 20 SIGKILLs at random moments of a large commit.
#[test]
fn interop_sigkill_during_commit_leaves_repo_consistent() {
    let have_ostree = require_tool("ostree");
    let seed = std::env::var("ROST_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("ROST_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("crash-it-")
        .tempdir_in(base)
        .unwrap();
    let tree = tmp.path().join("tree");
    build_large_tree(&tree, &mut rng);
    // The base repo holds v1 on ref `b`; every round copies it (hardlinks, cheap)
    // and is killed while committing v2, which writes ~16 MB of new objects.
    let base_repo = tmp.path().join("base");
    run_ok(rrepo(&base_repo, &["init", "--mode", "archive"]));
    run_ok(rrepo(
        &base_repo,
        &["commit", "-b", "b", tree.to_str().unwrap()],
    ));
    rewrite_some(&tree, &mut rng);

    let copy_base = |dest: &Path| {
        let _ = std::fs::remove_dir_all(dest);
        run_ok(Command::new("cp").arg("-al").arg(&base_repo).arg(dest));
    };
    let scratch = tmp.path().join("scratch");
    copy_base(&scratch);
    let start = Instant::now();
    run_ok(rrepo(
        &scratch,
        &["commit", "-b", "b", tree.to_str().unwrap()],
    ));
    let full = start.elapsed();

    let mut killed = 0;
    let repo = tmp.path().join("repo");
    let mut rounds = 0;
    // Keep going until 20 kills have landed mid-commit (a commit that beat its
    // timer still gets checked, but does not count).
    while killed < 20 {
        let i = rounds;
        rounds += 1;
        assert!(
            rounds <= 80,
            "only {killed} of {rounds} kills landed mid-commit"
        );
        copy_base(&repo);
        let delay = Duration::from_micros(rng.next() % (full.as_micros() as u64 * 8 / 10 + 1));
        let mut child = rrepo(&repo, &["commit", "-b", "b", tree.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();

        let out = rrepo(&repo, &["fsck"]).output().unwrap();
        assert!(
            out.status.success(),
            "round {i} (delay {delay:?}, seed {seed}): rost fsck failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if have_ostree {
            let out = Command::new("ostree")
                .arg(format!("--repo={}", repo.display()))
                .arg("fsck")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "round {i} (delay {delay:?}, seed {seed}): ostree fsck failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The ref names v1 or a complete v2 (fsck walked it); a rerun completes
        // and cleans up the dead transaction's staging dir.
        run_ok(rrepo(&repo, &["commit", "-b", "b", tree.to_str().unwrap()]));
        run_ok(rrepo(&repo, &["fsck", "-q"]));
        let staging: Vec<_> = std::fs::read_dir(repo.join("tmp"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("staging-")
            })
            .collect();
        assert!(
            staging.is_empty(),
            "round {i}: a staging dir was left behind"
        );
    }
    eprintln!("killed {killed} of {rounds} commits mid-flight (a full commit took {full:?})");
}
