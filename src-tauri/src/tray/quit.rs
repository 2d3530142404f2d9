//! Quit from the tray. With no VM running the app quits at once. Otherwise a native dialog asks: hibernate
//! the running VMs (the default: their state is saved to disk and they come back when the website resumes
//! them), leave them running (the daemon re-attaches to them at the next start), or cancel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tauri::{AppHandle, Manager};
use tauri_plugin_dialog::{
    DialogExt, MessageDialogButtons, MessageDialogKind, MessageDialogResult,
};
use webapi_core::daemon::DaemonState;
use webapi_core::protocol::SessionState;
use webapi_core::session::Control;

use super::{model, sessions};
use crate::ShellState;

pub const HIBERNATE: &str = "Hibernate and quit";
pub const LEAVE_RUNNING: &str = "Leave running and quit";
pub const CANCEL: &str = "Cancel";
pub const DIALOG_TITLE: &str = "Quit CernVM WebAPI";

/// How long Quit waits for one VM to save its state.
const HIBERNATE_WAIT: Duration = Duration::from_secs(180);

/// What the user chose in the Quit dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitChoice {
    Hibernate,
    LeaveRunning,
    Cancel,
}

/// Reads the dialog's answer; anything but the two quit buttons (Escape, closing it) cancels.
pub fn choice_of(result: &MessageDialogResult) -> QuitChoice {
    match result {
        MessageDialogResult::Custom(label) if label == HIBERNATE => QuitChoice::Hibernate,
        MessageDialogResult::Custom(label) if label == LEAVE_RUNNING => QuitChoice::LeaveRunning,
        MessageDialogResult::Yes => QuitChoice::Hibernate,
        MessageDialogResult::No => QuitChoice::LeaveRunning,
        _ => QuitChoice::Cancel,
    }
}

/// The dialog's question for these running VMs.
pub fn question(running: &[&model::SessionView]) -> String {
    let what = match running {
        [one] => format!("“{}” of {} is running.", vm_name(one), one.origin),
        many => format!("{} virtual machines are running.", many.len()),
    };
    format!(
        "{what}\n\nHibernate saves their state to disk; the websites can resume them later. \
         Leaving them running keeps them working; CernVM WebAPI takes them over again when it starts.\n\n\
         Nothing is lost either way."
    )
}

fn vm_name(s: &model::SessionView) -> &str {
    if s.vm.is_empty() {
        &s.name
    } else {
        &s.vm
    }
}

/// Only one Quit dialog at a time.
static ASKING: AtomicBool = AtomicBool::new(false);

/// Handles "Quit": asks when VMs run, then hibernates or not, then exits.
pub fn request(app: &AppHandle) {
    if ASKING.swap(true, Ordering::SeqCst) {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let daemon = app.state::<ShellState>().daemon.clone();
        let views = sessions::snapshot(&daemon).await;
        let running: Vec<_> = model::running(&views);
        if running.is_empty() {
            tracing::info!("Quit chosen in the tray menu; no VM runs");
            app.exit(0);
            return;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        app.dialog()
            .message(question(&running))
            .title(DIALOG_TITLE)
            .kind(MessageDialogKind::Warning)
            .buttons(MessageDialogButtons::YesNoCancelCustom(
                HIBERNATE.into(),
                LEAVE_RUNNING.into(),
                CANCEL.into(),
            ))
            .show_with_result(move |result| {
                let _ = tx.send(result);
            });
        let choice = rx.await.map_or(QuitChoice::Cancel, |r| choice_of(&r));
        tracing::info!(?choice, running = running.len(), "Quit dialog answered");
        match choice {
            QuitChoice::Cancel => {
                ASKING.store(false, Ordering::SeqCst);
                return;
            }
            QuitChoice::LeaveRunning => {}
            QuitChoice::Hibernate => {
                let names: Vec<String> = running.iter().map(|s| s.name.clone()).collect();
                hibernate_all(&daemon, &names).await;
            }
        }
        app.exit(0);
    });
}

/// Hibernates the named sessions in parallel and waits until each has left the running state.
pub async fn hibernate_all(daemon: &Arc<DaemonState>, names: &[String]) {
    let mut jobs = tokio::task::JoinSet::new();
    for name in names {
        let (daemon, name) = (daemon.clone(), name.clone());
        jobs.spawn(async move {
            let outcome =
                sessions::control(&daemon, &name, Control::Hibernate, Duration::from_secs(10))
                    .await;
            let saved = outcome == sessions::Outcome::Done
                && sessions::wait_until_left(&daemon, &name, SessionState::Running, HIBERNATE_WAIT)
                    .await;
            if saved {
                tracing::info!(session = %name, "hibernated for Quit");
            } else {
                tracing::warn!(session = %name, ?outcome, "could not hibernate for Quit; the VM is left as it is");
            }
        });
    }
    while jobs.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, vm: &str) -> model::SessionView {
        model::SessionView {
            name: name.into(),
            origin: "https://lhcathome.cern.ch".into(),
            vm: vm.into(),
            state: SessionState::Running,
            cap: 100,
        }
    }

    #[test]
    fn only_the_quit_buttons_quit() {
        assert_eq!(
            choice_of(&MessageDialogResult::Custom(HIBERNATE.into())),
            QuitChoice::Hibernate
        );
        assert_eq!(
            choice_of(&MessageDialogResult::Custom(LEAVE_RUNNING.into())),
            QuitChoice::LeaveRunning
        );
        assert_eq!(
            choice_of(&MessageDialogResult::Custom(CANCEL.into())),
            QuitChoice::Cancel
        );
        assert_eq!(choice_of(&MessageDialogResult::Cancel), QuitChoice::Cancel);
        assert_eq!(
            choice_of(&MessageDialogResult::Custom("other".into())),
            QuitChoice::Cancel
        );
    }

    #[test]
    fn the_question_names_one_vm_or_counts_many() {
        let a = view("a", "ATLAS worker");
        let b = view("b", "");
        assert!(
            question(&[&a]).starts_with("“ATLAS worker” of https://lhcathome.cern.ch is running.")
        );
        assert!(question(&[&b]).starts_with("“b” of"));
        assert!(question(&[&a, &b]).starts_with("2 virtual machines are running."));
        assert!(question(&[&a]).contains("Nothing is lost"));
    }
}
