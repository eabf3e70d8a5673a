//! `mio-host build`: runs each component's `[component.<id>.build]` command, like `spin build`.

use std::process::Command;

use anyhow::{Context, ensure};

use crate::manifest::Manifest;

/// Runs every build command in the manifest, in component-id order, stopping at the first failure.
pub fn build_all(manifest: &Manifest) -> anyhow::Result<()> {
    for component in manifest.components.values() {
        let Some(build) = &component.build else {
            eprintln!("[mio-host] {}: no build command, skipping", component.id);
            continue;
        };
        let workdir = match &build.workdir {
            Some(dir) => manifest.root.join(dir),
            None => manifest.root.clone(),
        };
        eprintln!("[mio-host] building {}: {}", component.id, build.command);
        let status = Command::new("sh")
            .arg("-c")
            .arg(&build.command)
            .current_dir(&workdir)
            .status()
            .with_context(|| format!("cannot run the build command of {}", component.id))?;
        ensure!(
            status.success(),
            "build command of {} failed ({status}): {}",
            component.id,
            build.command
        );
    }
    Ok(())
}
