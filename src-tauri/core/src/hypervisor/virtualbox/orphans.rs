//! Orphan clean-up: VMs we created (name prefix `cvmwebapi-` and our owner tag pointing into our data
//! dir) that no session owns any more, e.g. after a crash between `createvm` and saving the session
//! (BOINC vboxwrapper's lesson, shared/research/anchors.md §1.2). A prefixed VM without the tag (a crash
//! right after `createvm`) counts as ours only if its settings file lies in our data dir. Other VMs are
//! never touched.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::command::{self, NAME_PREFIX};
use super::parse::{self, ListedVm, MachineInfo, Observed};
use super::runner::Runner;
use super::{owner_of, VirtualBox};
use crate::hypervisor::{HvError, VmState};

/// A VM of ours with its owner tag, as found in the VirtualBox registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedVm {
    pub vm: ListedVm,
    pub owner: PathBuf,
}

/// Which of `found` are orphans: prefixed name, owner folder inside `data_root`, UUID not in `owned`. Pure.
pub fn select_orphans(
    found: &[TaggedVm],
    data_root: &Path,
    owned: &HashSet<String>,
) -> Vec<ListedVm> {
    found
        .iter()
        .filter(|t| {
            t.vm.name.starts_with(NAME_PREFIX)
                && t.owner.starts_with(data_root)
                && !owned.contains(&t.vm.uuid)
        })
        .map(|t| t.vm.clone())
        .collect()
}

/// Powers off and deletes every orphan (see [`select_orphans`]); returns the VMs removed. `owned`
/// holds the VirtualBox UUIDs of all sessions' VMs.
pub async fn cleanup_orphans(
    vbox: &VirtualBox,
    data_root: &Path,
    owned: &HashSet<String>,
) -> Result<Vec<ListedVm>, HvError> {
    let r = vbox.runner();
    let listed = parse::parse_list_vms(&r.check("list vms", &command::list_vms()).await?.stdout);
    let mut tagged = Vec::new();
    for vm in listed
        .into_iter()
        .filter(|v| v.name.starts_with(NAME_PREFIX) && command::valid_uuid(&v.uuid))
    {
        let owner = match owner_of(r, &vm.uuid).await? {
            Some(owner) => Some(owner),
            // Not tagged: a crash between `createvm` and tagging. Its settings file
            // `<session folder>/<name>/<name>.vbox` tells whose it was.
            None => {
                let info = MachineInfo::parse(
                    &r.check("showvminfo", &command::showvminfo(&vm.uuid))
                        .await?
                        .stdout,
                );
                info.config_file().and_then(session_folder_of_settings)
            }
        };
        if let Some(owner) = owner {
            tagged.push(TaggedVm { vm, owner });
        }
    }
    let orphans = select_orphans(&tagged, data_root, owned);
    for vm in &orphans {
        tracing::warn!(target: "vboxmanage", name = %vm.name, uuid = %vm.uuid, "removing an orphaned VM no session owns");
        remove(r, &vm.uuid).await?;
    }
    Ok(orphans)
}

/// `<session folder>/<name>/<name>.vbox` → `<session folder>`.
pub fn session_folder_of_settings(cfg_file: &str) -> Option<PathBuf> {
    Path::new(cfg_file)
        .parent()?
        .parent()
        .map(Path::to_path_buf)
}

async fn remove(r: &Runner, uuid: &str) -> Result<(), HvError> {
    let info = MachineInfo::parse(
        &r.check("showvminfo", &command::showvminfo(uuid))
            .await?
            .stdout,
    );
    match info.observed() {
        Some(Observed::Stable(VmState::Saved)) => {
            r.check("discardstate", &command::discardstate(uuid))
                .await?;
        }
        Some(Observed::Stable(VmState::PoweredOff)) => {}
        _ => {
            r.check("poweroff", &command::controlvm(uuid, "poweroff"))
                .await?;
        }
    }
    r.check("unregistervm", &command::unregistervm_delete(uuid))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, uuid: &str, owner: &str) -> TaggedVm {
        TaggedVm {
            vm: ListedVm {
                name: name.into(),
                uuid: uuid.into(),
            },
            owner: owner.into(),
        }
    }

    #[test]
    fn settings_file_tells_the_session_folder() {
        assert_eq!(
            session_folder_of_settings("/data/sessions/a/cvmwebapi-a/cvmwebapi-a.vbox"),
            Some(PathBuf::from("/data/sessions/a"))
        );
        assert_eq!(session_folder_of_settings("x.vbox"), None);
    }

    #[test]
    fn only_our_unowned_vms_are_orphans() {
        let found = [
            t("cvmwebapi-a", "u1", "/data/sessions/a"),
            t("cvmwebapi-b", "u2", "/data/sessions/b"),
            t("cvmwebapi-c", "u3", "/elsewhere/c"),
            t("users-vm", "u4", "/data/sessions/d"),
        ];
        let owned: HashSet<String> = ["u2".to_string()].into();
        let orphans = select_orphans(&found, Path::new("/data"), &owned);
        assert_eq!(
            orphans,
            vec![ListedVm {
                name: "cvmwebapi-a".into(),
                uuid: "u1".into()
            }]
        );
    }
}
