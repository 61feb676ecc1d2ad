//! The deployment package's size: the release binary zipped as Lambda's `bootstrap`, the way
//! cargo-lambda packages it (one file, deflated), and cargo-lambda's own arm64 zip when
//! `scripts/build-lambdas` has made one.

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};

/// Zips `binary` as `bootstrap` in `work` (with Info-ZIP's `zip`) and returns the zip's size.
pub(super) async fn zipped_bytes(
    binary: &Path,
    work: &Path,
    function: &str,
) -> anyhow::Result<u64> {
    let dir = work.join(function);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bootstrap = dir.join("bootstrap");
    std::fs::copy(binary, &bootstrap)
        .with_context(|| format!("copying {} to {}", binary.display(), bootstrap.display()))?;
    let zip = dir.join("bootstrap.zip");
    if zip.exists() {
        std::fs::remove_file(&zip)?;
    }
    let status = tokio::process::Command::new("zip")
        .arg("-q")
        .arg("-j")
        .arg("-X")
        .arg(&zip)
        .arg(&bootstrap)
        .status()
        .await
        .context("running zip (install Debian's zip)")?;
    ensure!(
        status.success(),
        "zip of {} failed ({status})",
        binary.display()
    );
    Ok(std::fs::metadata(&zip)?.len())
}

/// cargo-lambda's arm64 package of `function`, if `scripts/build-lambdas` left one.
pub(super) fn arm64_zip(lambda_dir: Option<&Path>, function: &str) -> Option<(PathBuf, u64)> {
    let path = lambda_dir?.join(function).join("bootstrap.zip");
    let bytes = std::fs::metadata(&path).ok()?.len();
    Some((path, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_binary_is_zipped_as_bootstrap() {
        let work = std::env::temp_dir().join(format!("kicksync-bench-zip-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let binary = work.join("some-binary");
        // Compressible: the zip is far smaller than the file.
        std::fs::write(&binary, vec![b'a'; 100_000]).unwrap();
        let bytes = zipped_bytes(&binary, &work, "f").await.unwrap();
        assert!(bytes > 0 && bytes < 10_000, "{bytes}");
        let listing = std::process::Command::new("unzip")
            .arg("-Z1")
            .arg(work.join("f").join("bootstrap.zip"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&listing.stdout).trim(), "bootstrap");
        assert!(arm64_zip(Some(&work), "f").is_some());
        assert!(arm64_zip(Some(&work), "missing").is_none());
        std::fs::remove_dir_all(&work).unwrap();
    }
}
