//! The `cvmwebapi keygen`, `cvmwebapi vmcp …` and `cvmwebapi keystore …` commands: argument parsing
//! and output around [`super::tools`]. Exit status: 0 success, 1 failure (bad signature, I/O),
//! 2 usage error.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand, ValueEnum};

use super::error::{TrustError, TrustErrorKind};
use super::tools::{self, NewKey};

/// The largest document read from a file or stdin.
const MAX_INPUT_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Algorithm {
    Ed25519,
    Rsa,
}

/// `cvmwebapi keygen`: make a signing key pair for a website (or a keystore).
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// ed25519 (recommended for new sites) or rsa (PKCS#1 v1.5 SHA-512, as the original).
    #[arg(long, value_enum)]
    pub algorithm: Algorithm,
    /// RSA key size (2048, 3072 or 4096).
    #[arg(long, default_value_t = 4096)]
    pub bits: usize,
    /// Writes PREFIX.key (private, mode 0600) and PREFIX.pub (the base64 key for a keystore line).
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
}

/// `cvmwebapi vmcp …`
#[derive(Debug, Subcommand)]
pub enum VmcpCommand {
    /// Sign a VMCP document (JSON object) for one request's cvm_salt; prints the signed JSON.
    Sign(VmcpSignArgs),
    /// Check a signed VMCP document against a public key and salt, as the daemon would.
    Verify(VmcpVerifyArgs),
}

#[derive(Debug, Args)]
pub struct VmcpSignArgs {
    /// The private key (PREFIX.key from keygen, or a PKCS#1/PKCS#8 PEM RSA key).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The cvm_salt query parameter of the request being answered.
    #[arg(long)]
    pub salt: String,
    /// Leave out members the daemon ignores (booleans, floats, null, arrays, objects, big ints)
    /// instead of refusing the document.
    #[arg(long)]
    pub drop_unsupported: bool,
    /// The document (default: standard input).
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VmcpVerifyArgs {
    /// The public key (PREFIX.pub, one-line base64 SPKI).
    #[arg(long = "pub", value_name = "FILE")]
    pub public: PathBuf,
    #[arg(long)]
    pub salt: String,
    /// The signed document (default: standard input).
    pub file: Option<PathBuf>,
}

/// `cvmwebapi keystore …`
#[derive(Debug, Subcommand)]
pub enum KeystoreCommand {
    /// Make a signed keystore from domain=base64-SPKI lines: writes OUT and OUT.sig.
    Sign(KeystoreSignArgs),
    /// Check a signed keystore (signature, headers, expiry) against a root public key.
    Verify(KeystoreVerifyArgs),
}

#[derive(Debug, Args)]
pub struct KeystoreSignArgs {
    /// The trust-root private key.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The version number; every new publication needs a higher one.
    #[arg(long)]
    pub version: u64,
    /// When the keystore stops being accepted (RFC 3339, for example 2027-01-31T00:00:00Z).
    #[arg(long)]
    pub expires: String,
    /// Output file; its signature goes to OUT.sig.
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// The domain lines (default: standard input).
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KeystoreVerifyArgs {
    /// A trust-root public key (PREFIX.pub). Repeatable.
    #[arg(long = "root", value_name = "FILE", required = true)]
    pub roots: Vec<PathBuf>,
    /// The signature file (default: FILE.sig).
    #[arg(long, value_name = "FILE")]
    pub sig: Option<PathBuf>,
    /// The signed keystore.
    pub file: PathBuf,
}

/// Runs `keygen`.
pub fn keygen(args: KeygenArgs) -> ExitCode {
    let kind = match args.algorithm {
        Algorithm::Ed25519 => NewKey::Ed25519,
        Algorithm::Rsa => NewKey::Rsa(args.bits),
    };
    report(tools::keygen(kind, &args.out).map(|public| {
        let (key, pub_path) = tools::key_paths(&args.out);
        eprintln!(
            "wrote {} (private: keep it secret) and {} (sha256:{})",
            key.display(),
            pub_path.display(),
            public.fingerprint()
        );
        println!("{}", public.to_base64());
    }))
}

/// Runs `vmcp sign` / `vmcp verify`.
pub fn vmcp(command: VmcpCommand) -> ExitCode {
    match command {
        VmcpCommand::Sign(args) => report((|| {
            let key = tools::load_signing_key(&args.key)?;
            let document = read_input(args.file.as_ref())?;
            let signed = tools::sign_vmcp(&document, &args.salt, &key, args.drop_unsupported)?;
            for (k, reason) in &signed.dropped {
                eprintln!("left out {k:?}: {reason}");
            }
            println!("{}", signed.json);
            Ok(())
        })()),
        VmcpCommand::Verify(args) => report((|| {
            let key = tools::load_public_key(&args.public)?;
            let document = read_input(args.file.as_ref())?;
            let map = super::vmcp::validate_vmcp(&document, &args.salt, &key)?;
            eprintln!("signature OK ({} members)", map.len());
            Ok(())
        })()),
    }
}

/// Runs `keystore sign` / `keystore verify`.
pub fn keystore(command: KeystoreCommand) -> ExitCode {
    match command {
        KeystoreCommand::Sign(args) => report((|| {
            let key = tools::load_signing_key(&args.key)?;
            let input = read_input(args.file.as_ref())?;
            let input = String::from_utf8(input)
                .map_err(|_| TrustError::usage("the input is not UTF-8 text"))?;
            let (text, sig) = tools::sign_keystore(&input, &key, args.version, &args.expires)?;
            let out = std::path::absolute(&args.out)
                .map_err(|e| TrustError::io(format!("{}: {e}", args.out.display())))?;
            let mut sig_path = out.clone().into_os_string();
            sig_path.push(".sig");
            let io = |e: anyhow::Error| TrustError::io(format!("{e:#}"));
            crate::store::write_atomic(&out, text.as_bytes()).map_err(io)?;
            crate::store::write_atomic(std::path::Path::new(&sig_path), sig.as_bytes())
                .map_err(io)?;
            eprintln!(
                "wrote {} and {}",
                args.out.display(),
                PathBuf::from(sig_path).display()
            );
            Ok(())
        })()),
        KeystoreCommand::Verify(args) => report((|| {
            let roots = args
                .roots
                .iter()
                .map(|p| tools::load_public_key(p))
                .collect::<Result<Vec<_>, _>>()?;
            let sig_path = args.sig.clone().unwrap_or_else(|| {
                let mut p = args.file.clone().into_os_string();
                p.push(".sig");
                p.into()
            });
            let bytes = super::keystore::read_bounded(&args.file)?;
            let sig = super::keystore::read_bounded(&sig_path)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let ok = tools::verify_keystore(bytes.as_bytes(), &sig, &roots, now)?;
            println!(
                "OK: version {}, expires {}, {} domains",
                ok.version,
                super::signed_keystore::format_unix(ok.expires_unix),
                ok.text.entries.len()
            );
            Ok(())
        })()),
    }
}

fn read_input(file: Option<&PathBuf>) -> Result<Vec<u8>, TrustError> {
    let mut bytes = Vec::new();
    let result = match file {
        Some(path) if path.as_os_str() != "-" => {
            return super::keystore::read_bounded(path).map(String::into_bytes)
        }
        _ => std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes),
    };
    result.map_err(|e| TrustError::io(format!("cannot read standard input: {e}")))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(TrustError::usage(format!(
            "the input is larger than {MAX_INPUT_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

fn report(result: Result<(), TrustError>) -> ExitCode {
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cvmwebapi: {} ({})", e.detail(), e.code());
            match e.kind() {
                TrustErrorKind::Usage | TrustErrorKind::Parse => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
