//! `wasmalived-wit-c`: what a C check plugin needs besides clang and wasi-libc, in one small
//! binary built from this workspace (instead of `wit-bindgen-cli`, a ~12 minute install, and
//! `wasm-tools`):
//!
//! ```text
//! wasmalived-wit-c bindgen WIT_DIR --world WORLD --out-dir DIR   # C bindings (wit-bindgen c)
//! wasmalived-wit-c component CORE.wasm -o PLUGIN.wasm            # component new --adapt
//! ```
//!
//! `bindgen` writes `WORLD.h`, `WORLD.c` and `WORLD_component_type.o` exactly as
//! `wit-bindgen c` 0.46 does. `component` wraps a core module built by clang (a WASI
//! preview-1 reactor) into a component, linking the preview-1 → preview-2 reactor adapter of
//! the host's wasmtime version (embedded here), and validates it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use wit_bindgen_core::Files;
use wit_parser::Resolve;

/// The module name wasi-libc imports preview-1 functions from.
const PREVIEW1: &str = "wasi_snapshot_preview1";

/// Build C check plugins for wasmalived.
#[derive(Debug, Parser)]
#[command(name = "wasmalived-wit-c", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate C bindings for a world (as `wit-bindgen c`).
    Bindgen {
        /// The WIT directory (a package, with its dependencies in `deps/`).
        wit: PathBuf,
        /// The world to generate bindings for.
        #[arg(long)]
        world: String,
        /// Where to write the `.h`, `.c` and `_component_type.o` files.
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Wrap a core module (with its embedded WIT) into a component, adapting WASI preview 1.
    Component {
        /// The core module clang produced.
        core: PathBuf,
        /// The component to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Bindgen {
            wit,
            world,
            out_dir,
        } => bindgen(&wit, &world, &out_dir),
        Command::Component { core, output } => component(&core, &output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasmalived-wit-c: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// C bindings of `world` in the WIT package at `wit`, written into `out_dir`.
fn bindgen(wit: &Path, world: &str, out_dir: &Path) -> Result<()> {
    let files = generate_c(wit, world)?;
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    for (name, contents) in files.iter() {
        let path = out_dir.join(name);
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The files `wit-bindgen c` generates for `world`.
fn generate_c(wit: &Path, world: &str) -> Result<Files> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .with_context(|| format!("reading WIT from {}", wit.display()))?;
    let world_id = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("world `{world}` in {}", wit.display()))?;
    let mut files = Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&resolve, world_id, &mut files)
        .context("generating C bindings")?;
    Ok(files)
}

/// `core` wrapped into a validated component at `output`.
fn component(core: &Path, output: &Path) -> Result<()> {
    let module = fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let bytes =
        componentize(&module).with_context(|| format!("componentizing {}", core.display()))?;
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(output, bytes).with_context(|| format!("writing {}", output.display()))
}

/// A component from a core module with an embedded `component-type` section.
fn componentize(module: &[u8]) -> Result<Vec<u8>> {
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)?
        .adapter(
            PREVIEW1,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's contract, as a plugin's `wit/deps/plugin` links it.
    fn contract() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit")
    }

    #[test]
    fn generates_c_bindings_of_the_contract() {
        let files = generate_c(&contract(), "check-plugin").expect("bindings");
        let names: Vec<&str> = files.iter().map(|(n, _)| n).collect();
        for want in [
            "check_plugin.h",
            "check_plugin.c",
            "check_plugin_component_type.o",
        ] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
        let header = files
            .iter()
            .find(|(n, _)| *n == "check_plugin.h")
            .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
            .expect("header");
        assert!(
            header.contains("exports_wasmalived_plugin_check_check("),
            "the check export is declared"
        );
        assert!(header.contains("wasmalived_plugin_processes_by_name("));
    }

    #[test]
    fn an_unknown_world_is_an_error_naming_it() {
        let Err(e) = generate_c(&contract(), "no-such-world") else {
            panic!("no such world");
        };
        assert!(format!("{e:#}").contains("no-such-world"), "{e:#}");
    }

    #[test]
    fn a_non_module_is_refused() {
        assert!(componentize(b"not wasm").is_err());
    }
}
