//! How settings take effect: at start ([`Startup`]: command-line flags win over the settings, the
//! settings over the built-in defaults) and live after the control panel saved them ([`apply_live`]);
//! [`restart_needed`] names the changed fields that only a restart applies.

use std::sync::Arc;
use std::time::Duration;

use super::Settings;
use crate::config::ServeArgs;
use crate::daemon::DaemonState;
use crate::hypervisor::HypervisorChoice;
use crate::idle::{IdleHandle, IdlePolicy};
use crate::trust::Verifier;

/// Fields (JSON names) whose change takes effect only when the app starts again.
pub const RESTART_FIELDS: [&str; 3] = ["hypervisor", "imageMirror", "cacheLimitBytes"];

/// What the daemon starts with, after flags and settings are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    pub idle_threshold: Duration,
    /// `--idle-threshold` was given: it stays in force, also when the settings change later.
    pub threshold_from_flag: bool,
    pub hypervisor: HypervisorChoice,
    pub default_idle_policy: IdlePolicy,
}

impl Startup {
    /// Flags win over settings, settings over defaults. (The image mirror and the keystores are combined
    /// where they are read: `media::CacheOptions::resolve` and `trust::Verifier`.)
    pub fn resolve(args: &ServeArgs, settings: &Settings) -> Self {
        let flag = args.idle_threshold_flag();
        Self {
            idle_threshold: flag.unwrap_or(Duration::from_secs(
                settings.idle_threshold_secs.clamp(1, 86_400),
            )),
            threshold_from_flag: flag.is_some(),
            hypervisor: args.hypervisor.unwrap_or(settings.hypervisor),
            default_idle_policy: settings.default_idle_policy,
        }
    }
}

/// Applies the start settings to a bound daemon and starts its idle controller (both entry points).
pub async fn start_idle(state: &Arc<DaemonState>, startup: &Startup) -> IdleHandle {
    state.set_default_idle_policy(startup.default_idle_policy);
    crate::idle::spawn_for(state, startup.idle_threshold).await
}

/// Applies what can change while the daemon runs: the idle threshold (unless a flag fixed it), the
/// default policy of new sessions, and the trusted local keystores (re-read by `verifier`).
pub fn apply_live(
    state: &DaemonState,
    verifier: Option<&Verifier>,
    startup: &Startup,
    settings: &Settings,
) {
    state.set_default_idle_policy(settings.default_idle_policy);
    if let (Some(idle), false) = (state.registry().idle(), startup.threshold_from_flag) {
        idle.set_threshold(Duration::from_secs(settings.idle_threshold_secs));
        idle.wake();
    }
    if let Some(verifier) = verifier {
        if let Err(e) = verifier.reload_local() {
            tracing::warn!("cannot reload the local keystores: {}", e.detail());
        }
    }
}

/// The fields of [`RESTART_FIELDS`] that differ between `before` and `after`.
pub fn restart_needed(before: &Settings, after: &Settings) -> Vec<&'static str> {
    let changed = [
        before.hypervisor != after.hypervisor,
        before.image_mirror != after.image_mirror,
        before.cache_limit_bytes != after.cache_limit_bytes,
    ];
    RESTART_FIELDS
        .iter()
        .zip(changed)
        .filter(|(_, c)| *c)
        .map(|(name, _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(argv: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("x").chain(argv.iter().copied()))
            .unwrap()
            .serve
    }

    #[test]
    fn flags_win_over_settings_which_win_over_defaults() {
        let settings = Settings {
            idle_threshold_secs: 300,
            hypervisor: HypervisorChoice::Qemu,
            default_idle_policy: IdlePolicy::validate(1, 0, 0, 1).unwrap(),
            ..Settings::default()
        };
        let from_settings = Startup::resolve(&args(&[]), &settings);
        assert_eq!(from_settings.idle_threshold, Duration::from_secs(300));
        assert!(!from_settings.threshold_from_flag);
        assert_eq!(from_settings.hypervisor, HypervisorChoice::Qemu);
        assert_eq!(
            from_settings.default_idle_policy,
            settings.default_idle_policy
        );

        let from_flags = Startup::resolve(
            &args(&["--idle-threshold", "45", "--hypervisor", "virtualbox"]),
            &settings,
        );
        assert_eq!(from_flags.idle_threshold, Duration::from_secs(45));
        assert!(from_flags.threshold_from_flag);
        assert_eq!(from_flags.hypervisor, HypervisorChoice::Virtualbox);

        let defaults = Startup::resolve(&args(&[]), &Settings::default());
        assert_eq!(defaults.idle_threshold, crate::idle::DEFAULT_THRESHOLD);
        assert_eq!(defaults.hypervisor, HypervisorChoice::Auto);
        assert!(!defaults.default_idle_policy.controlled);
    }

    #[test]
    fn only_changed_restart_fields_are_reported() {
        let a = Settings::default();
        assert!(restart_needed(&a, &a).is_empty());
        let b = Settings {
            idle_threshold_secs: 5,
            hypervisor: HypervisorChoice::Qemu,
            image_mirror: Some("http://m.example".into()),
            ..a.clone()
        };
        assert_eq!(restart_needed(&a, &b), vec!["hypervisor", "imageMirror"]);
        let c = Settings {
            cache_limit_bytes: 1 << 30,
            ..a.clone()
        };
        assert_eq!(restart_needed(&a, &c), vec!["cacheLimitBytes"]);
    }
}
