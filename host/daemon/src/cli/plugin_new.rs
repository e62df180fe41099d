//! `wasmalived plugin new NAME --lang rust|python|js|c [--dir DIR]`: write a check-plugin
//! project that builds to a component with one command (its README says which) and passes
//! `wasmalived plugin run` as written.
//!
//! The templates live in `host/daemon/templates/LANG/` and are compiled into the binary;
//! `{{name}}` becomes the plugin's name (kebab-case: the WIT world, the package, the file)
//! and `{{crate}}` its snake-case form (the Rust crate's `.wasm`, the C bindings' prefix).
//! Python, JavaScript and C projects get the contract this daemon provides as
//! `wit/deps/plugin/plugin.wit`; a Rust project depends on the SDK crate, which carries it.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

/// The contract, as this daemon provides it.
const CONTRACT: &str = include_str!("../../../../wit/plugin.wit");
/// Where the Rust SDK is in the checkout this binary was built from.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/sdk");

/// A plugin's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust, with the `wasmalived-plugin-sdk` crate: `cargo build --release --target wasm32-wasip2`.
    Rust,
    /// Python, with componentize-py: `make`.
    Python,
    /// JavaScript, with componentize-js: `make`.
    Js,
    /// C, with clang + wasi-libc and `wasmalived-wit-c`: `make`.
    C,
}

impl Lang {
    /// The template files: (path in the project, text).
    fn templates(self) -> &'static [(&'static str, &'static str)] {
        macro_rules! templates {
            ($lang:literal: $($path:literal),* $(,)?) => {
                &[$(($path, include_str!(concat!("../../templates/", $lang, "/", $path)))),*]
            };
        }
        match self {
            Lang::Rust => templates!("rust": "Cargo.toml", "src/lib.rs", "README.md", ".gitignore"),
            Lang::Python => {
                templates!("python": "app.py", "Makefile", "wit/world.wit", "README.md", ".gitignore")
            }
            Lang::Js => {
                templates!("js": "check.js", "build.mjs", "package.json", "Makefile", "wit/world.wit", "README.md", ".gitignore")
            }
            Lang::C => {
                templates!("c": "check.c", "Makefile", "wit/world.wit", "README.md", ".gitignore")
            }
        }
    }

    /// The command that builds the component, and where it writes it.
    pub fn build_command(self, name: &str) -> (&'static str, String) {
        match self {
            Lang::Rust => (
                "cargo build --release --target wasm32-wasip2",
                format!("target/wasm32-wasip2/release/{}.wasm", snake(name)),
            ),
            Lang::Python | Lang::Js | Lang::C => ("make", format!("{name}.wasm")),
        }
    }
}

/// Arguments of `plugin new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name, kebab-case (`check-redis`): the WIT world, the package, the file.
    pub name: String,
    /// The language.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The project directory to create (default: ./NAME). It must not exist, or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Rust: the `plugins/sdk` directory of a wasmalived checkout (default: the one this
    /// binary was built from).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

/// Why a project cannot be written.
#[derive(Debug)]
pub enum NewError {
    /// The name is not kebab-case.
    BadName(String),
    /// The directory exists and is not empty.
    NotEmpty(PathBuf),
    /// The Rust SDK is not where it was looked for.
    NoSdk(PathBuf),
    /// Writing failed.
    Io(PathBuf, io::Error),
}

impl fmt::Display for NewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NewError::BadName(n) => write!(
                f,
                "bad plugin name `{n}`: kebab-case, words of a-z and 0-9 each starting with a \
                 letter (e.g. check-redis)"
            ),
            NewError::NotEmpty(d) => write!(f, "{} exists and is not empty", d.display()),
            NewError::NoSdk(d) => write!(
                f,
                "the Rust plugin SDK is not at {}: pass --sdk DIR (plugins/sdk of a wasmalived \
                 checkout)",
                d.display()
            ),
            NewError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for NewError {}

/// Run `plugin new`; prints what it wrote and how to build it.
pub fn main(args: &NewArgs) -> ExitCode {
    match create(args) {
        Ok(dir) => {
            let (command, output) = args.lang.build_command(&args.name);
            println!("created {}", dir.display());
            println!("build:  cd {} && {command}", dir.display());
            println!("try:    wasmalived plugin run {}/{output}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasmalived plugin new: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Write the project; its directory.
pub fn create(args: &NewArgs) -> Result<PathBuf, NewError> {
    check_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk = match args.lang {
        Lang::Rust => {
            let sdk = args.sdk.clone().unwrap_or_else(|| PathBuf::from(BUILT_SDK));
            let sdk = fs::canonicalize(&sdk).map_err(|_| NewError::NoSdk(sdk.clone()))?;
            if !sdk.join("Cargo.toml").is_file() {
                return Err(NewError::NoSdk(sdk));
            }
            Some(sdk)
        }
        _ => None,
    };
    let files = project_files(args.lang, &args.name, sdk.as_deref());
    write_project(&dir, &files)?;
    Ok(dir)
}

/// The project's files, with the placeholders filled in.
pub fn project_files(lang: Lang, name: &str, sdk: Option<&Path>) -> Vec<(String, String)> {
    let sdk = sdk.map(|p| toml_escape(&p.display().to_string()));
    let fill = |text: &str| {
        let text = text
            .replace("{{name}}", name)
            .replace("{{crate}}", &snake(name));
        match &sdk {
            Some(sdk) => text.replace("{{sdk}}", sdk),
            None => text,
        }
    };
    let mut files: Vec<(String, String)> = lang
        .templates()
        .iter()
        .map(|(path, text)| (path.to_string(), fill(text)))
        .collect();
    if lang != Lang::Rust {
        files.push(("wit/deps/plugin/plugin.wit".into(), CONTRACT.to_string()));
    }
    files
}

/// Kebab-case: words of `a-z0-9`, each starting with a letter, joined by `-`.
fn check_name(name: &str) -> Result<(), NewError> {
    let word_ok = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    if name.len() <= 64 && name.split('-').all(word_ok) {
        Ok(())
    } else {
        Err(NewError::BadName(name.to_string()))
    }
}

fn snake(name: &str) -> String {
    name.replace('-', "_")
}

/// `s` inside a TOML basic string.
fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn write_project(dir: &Path, files: &[(String, String)]) -> Result<(), NewError> {
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |e| NewError::Io(p, e)
    };
    if dir.exists() {
        let mut entries = fs::read_dir(dir).map_err(io_err(dir))?;
        if entries.next().is_some() {
            return Err(NewError::NotEmpty(dir.to_path_buf()));
        }
    }
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        fs::write(&path, text).map_err(io_err(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kebab_case() {
        for good in ["check", "check-redis", "a1-b2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Check",
            "check_redis",
            "-a",
            "a-",
            "a--b",
            "1a",
            "a-1b",
            "a b",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_language_gets_filled_templates_and_the_contract() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js, Lang::C] {
            let files = project_files(lang, "check-redis", Some(Path::new("/sdk \"x\"")));
            for (path, text) in &files {
                assert!(
                    !text.contains("{{"),
                    "{lang:?} {path}: unfilled placeholder"
                );
            }
            let contract = files
                .iter()
                .find(|(p, _)| p == "wit/deps/plugin/plugin.wit");
            match lang {
                Lang::Rust => {
                    assert!(contract.is_none());
                    let cargo = &files
                        .iter()
                        .find(|(p, _)| p == "Cargo.toml")
                        .expect("toml")
                        .1;
                    assert!(cargo.contains(r#"path = "/sdk \"x\"""#), "{cargo}");
                    assert!(cargo.contains(r#"name = "check-redis""#));
                }
                _ => {
                    let (_, text) = contract.expect("the contract");
                    assert!(text.contains("package wasmalived:plugin@1.5.0;"));
                    let world = &files
                        .iter()
                        .find(|(p, _)| p == "wit/world.wit")
                        .expect("world")
                        .1;
                    assert!(world.contains("world check-redis {"), "{world}");
                }
            }
        }
        let c = project_files(Lang::C, "check-redis", None);
        let source = &c.iter().find(|(p, _)| p == "check.c").expect("check.c").1;
        assert!(source.contains("#include \"check_redis.h\""));
    }

    #[test]
    fn refuses_a_non_empty_directory_and_bad_names() {
        let dir = std::env::temp_dir().join(format!("plugin-new-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        let args = |name: &str| NewArgs {
            name: name.into(),
            lang: Lang::Python,
            dir: Some(dir.clone()),
            sdk: None,
        };
        assert_eq!(create(&args("probe")).expect("empty dir is fine"), dir);
        assert!(dir.join("wit/deps/plugin/plugin.wit").is_file());
        assert!(matches!(create(&args("probe")), Err(NewError::NotEmpty(_))));
        assert!(matches!(create(&args("Probe")), Err(NewError::BadName(_))));
        let rust = NewArgs {
            lang: Lang::Rust,
            sdk: Some(dir.join("nowhere")),
            dir: Some(dir.join("r")),
            ..args("probe")
        };
        assert!(matches!(create(&rust), Err(NewError::NoSdk(_))));
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
