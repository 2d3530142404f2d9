//! Contextualisation: the media that carry the session's expanded `userData` (see
//! `session::expand_user_data`) into the guest (a `CONTEXT.SH` ISO in the EC2/OpenNebula shape the original used;
//! backends may add their own channel, e.g. QEMU's fw_cfg).

mod iso9660;

pub use iso9660::context_iso;

use base64::Engine as _;

/// The largest context (expanded `userData`) a VM accepts, in bytes.
pub const MAX_CONTEXT_BYTES: usize = 1024 * 1024;

/// The `CONTEXT.SH` file of the context disk: `EC2_USER_DATA="<base64>"` and `ONE_CONTEXT_PATH=...`,
/// each line newline-terminated (shared/spec/vm-lifecycle.md §4.4).
pub fn context_sh(user_data: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(user_data.as_bytes());
    format!("EC2_USER_DATA=\"{b64}\"\nONE_CONTEXT_PATH=\"/var/lib/amiconfig\"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_sh_has_the_opennebula_shape() {
        assert_eq!(
            context_sh("a=1\n"),
            "EC2_USER_DATA=\"YT0xCg==\"\nONE_CONTEXT_PATH=\"/var/lib/amiconfig\"\n"
        );
    }
}
