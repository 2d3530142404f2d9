//! What the tray menu shows, as plain data computed by pure functions: the status line, one entry per
//! session with the actions its state allows, and which icon to show. The menu is rebuilt only when this
//! model changes, so a menu open on screen is not replaced every second.

use std::net::SocketAddr;

use webapi_core::protocol::SessionState;

/// One session as the tray sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The session name (the registry key; menu ids are built from it).
    pub name: String,
    /// The website that created it.
    pub origin: String,
    /// The VM's name as the website gave it (`name` parameter).
    pub vm: String,
    pub state: SessionState,
    /// Current CPU execution cap, in percent.
    pub cap: u8,
}

/// A per-session action offered in its submenu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    Start,
    Pause,
    Resume,
    Stop,
    OpenWebsite,
    ShowInPanel,
}

impl SessionAction {
    pub fn label(self) -> &'static str {
        match self {
            Self::Start => "Start",
            Self::Pause => "Pause",
            Self::Resume => "Resume",
            Self::Stop => "Stop",
            Self::OpenWebsite => "Open website",
            Self::ShowInPanel => "Show in panel",
        }
    }

    /// The menu-id word of the action (`session:<word>:<name>`).
    pub fn word(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Stop => "stop",
            Self::OpenWebsite => "open",
            Self::ShowInPanel => "show",
        }
    }

    pub fn from_word(word: &str) -> Option<Self> {
        [
            Self::Start,
            Self::Pause,
            Self::Resume,
            Self::Stop,
            Self::OpenWebsite,
            Self::ShowInPanel,
        ]
        .into_iter()
        .find(|a| a.word() == word)
    }
}

/// Menu ids of per-session items: this prefix, the action word, ':' and the session name.
pub const SESSION_ID_PREFIX: &str = "session:";

pub fn session_item_id(action: SessionAction, name: &str) -> String {
    format!("{SESSION_ID_PREFIX}{}:{name}", action.word())
}

/// Splits a per-session menu id into its action and session name.
pub fn parse_session_item_id(id: &str) -> Option<(SessionAction, &str)> {
    let rest = id.strip_prefix(SESSION_ID_PREFIX)?;
    let (word, name) = rest.split_once(':')?;
    Some((SessionAction::from_word(word)?, name))
}

/// The state in words, for people.
pub fn state_words(state: SessionState) -> &'static str {
    match state {
        SessionState::Missing | SessionState::Available => "not created yet",
        SessionState::PowerOff => "stopped",
        SessionState::Saved => "hibernated",
        SessionState::Paused => "paused",
        SessionState::Running => "running",
    }
}

/// The actions a session in `state` offers: Pause when running, Resume when paused or hibernated, Stop
/// while a VM is up (running, paused or hibernated), Start when stopped (after a Stop or a crash; the
/// website's start values are kept); the website and panel always. A session whose VM was never started
/// waits for its website.
pub fn actions_for(state: SessionState) -> Vec<SessionAction> {
    let mut actions = Vec::new();
    match state {
        SessionState::Running => actions.extend([SessionAction::Pause, SessionAction::Stop]),
        SessionState::Paused | SessionState::Saved => {
            actions.extend([SessionAction::Resume, SessionAction::Stop])
        }
        SessionState::PowerOff => actions.push(SessionAction::Start),
        SessionState::Missing | SessionState::Available => {}
    }
    actions.extend([SessionAction::OpenWebsite, SessionAction::ShowInPanel]);
    actions
}

/// The submenu title of a session: "<origin> — <vm>".
pub fn session_title(s: &SessionView) -> String {
    let vm = if s.vm.is_empty() { &s.name } else { &s.vm };
    format!("{} — {}", s.origin, vm)
}

/// The informational first line of a session's submenu.
pub fn session_detail(s: &SessionView) -> String {
    format!("{} · CPU cap {}%", capitalised(state_words(s.state)), s.cap)
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The first, informational line of the menu.
pub fn status_line(addr: SocketAddr, sessions: usize, failed: usize) -> String {
    let sessions = match sessions {
        0 => "no sessions".to_string(),
        1 => "1 session".to_string(),
        n => format!("{n} sessions"),
    };
    let failed = match failed {
        0 => String::new(),
        1 => " · 1 VM failed (see the control panel)".to_string(),
        n => format!(" · {n} VMs failed (see the control panel)"),
    };
    format!("Listening on {addr} · {sessions}{failed}")
}

/// The second line: what the idle controller does, or that it does not run.
pub fn idle_line(idle_summary: Option<&str>) -> String {
    match idle_summary {
        Some(summary) => format!("Idle control: {summary}"),
        None => "Idle control: not running".to_string(),
    }
}

/// Which tray icon to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IconKind {
    /// Nothing runs.
    Idle,
    /// At least one VM runs.
    Running,
    /// The user should look: a consent dialog waits or a VM failed.
    Attention,
}

/// `attention`: a consent dialog waits or a VM failure was not seen yet.
pub fn icon_for(sessions: &[SessionView], attention: bool) -> IconKind {
    if attention {
        IconKind::Attention
    } else if sessions.iter().any(|s| s.state == SessionState::Running) {
        IconKind::Running
    } else {
        IconKind::Idle
    }
}

/// Whether "Pause all" / "Resume all" have something to do.
pub fn can_pause_all(sessions: &[SessionView]) -> bool {
    sessions.iter().any(|s| s.state == SessionState::Running)
}

pub fn can_resume_all(sessions: &[SessionView]) -> bool {
    sessions
        .iter()
        .any(|s| matches!(s.state, SessionState::Paused | SessionState::Saved))
}

/// Everything the menu shows; rebuilt when it differs from the shown one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuModel {
    pub status: String,
    pub idle: String,
    /// Sessions sorted by origin, then name.
    pub sessions: Vec<SessionView>,
    /// Whether an idle controller runs (Snooze is disabled without one).
    pub idle_control: bool,
    pub snoozed: bool,
}

impl MenuModel {
    /// `failed`: VM failures the volunteer has not seen yet.
    pub fn new(
        addr: SocketAddr,
        mut sessions: Vec<SessionView>,
        idle_summary: Option<&str>,
        snoozed: bool,
        failed: usize,
    ) -> Self {
        sessions.sort_by(|a, b| (&a.origin, &a.name).cmp(&(&b.origin, &b.name)));
        Self {
            status: status_line(addr, sessions.len(), failed),
            idle: idle_line(idle_summary),
            idle_control: idle_summary.is_some(),
            snoozed: snoozed && idle_summary.is_some(),
            sessions,
        }
    }
}

/// Sessions whose VM runs (what Quit asks about).
pub fn running(sessions: &[SessionView]) -> Vec<&SessionView> {
    sessions
        .iter()
        .filter(|s| s.state == SessionState::Running)
        .collect()
}

/// Whether `origin` may be handed to the system's URL opener: an http(s) URL with nothing odd in it.
pub fn openable_origin(origin: &str) -> bool {
    (origin.starts_with("https://") || origin.starts_with("http://"))
        && origin.len() <= 2048
        && !origin
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'' || c == '`')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, origin: &str, state: SessionState) -> SessionView {
        SessionView {
            name: name.into(),
            origin: origin.into(),
            vm: format!("{name} VM"),
            state,
            cap: 50,
        }
    }

    #[test]
    fn status_line_counts_sessions() {
        let addr = "127.0.0.1:5624".parse().unwrap();
        assert_eq!(
            status_line(addr, 0, 0),
            "Listening on 127.0.0.1:5624 · no sessions"
        );
        assert_eq!(
            status_line(addr, 1, 0),
            "Listening on 127.0.0.1:5624 · 1 session"
        );
        assert_eq!(
            status_line(addr, 3, 0),
            "Listening on 127.0.0.1:5624 · 3 sessions"
        );
        assert_eq!(
            status_line(addr, 1, 1),
            "Listening on 127.0.0.1:5624 · 1 session · 1 VM failed (see the control panel)"
        );
        assert_eq!(
            status_line(addr, 3, 2),
            "Listening on 127.0.0.1:5624 · 3 sessions · 2 VMs failed (see the control panel)"
        );
    }

    #[test]
    fn idle_line_says_when_no_controller_runs() {
        assert_eq!(idle_line(None), "Idle control: not running");
        assert_eq!(
            idle_line(Some("in use · 1 VM held back")),
            "Idle control: in use · 1 VM held back"
        );
    }

    #[test]
    fn actions_follow_the_state() {
        use SessionAction::*;
        assert_eq!(
            actions_for(SessionState::Running),
            [Pause, Stop, OpenWebsite, ShowInPanel]
        );
        assert_eq!(
            actions_for(SessionState::Paused),
            [Resume, Stop, OpenWebsite, ShowInPanel]
        );
        assert_eq!(
            actions_for(SessionState::Saved),
            [Resume, Stop, OpenWebsite, ShowInPanel]
        );
        assert_eq!(
            actions_for(SessionState::PowerOff),
            [Start, OpenWebsite, ShowInPanel]
        );
        assert_eq!(
            actions_for(SessionState::Missing),
            [OpenWebsite, ShowInPanel]
        );
    }

    #[test]
    fn session_ids_round_trip_and_reject_others() {
        for action in [
            SessionAction::Start,
            SessionAction::Pause,
            SessionAction::Resume,
            SessionAction::Stop,
            SessionAction::OpenWebsite,
            SessionAction::ShowInPanel,
        ] {
            let id = session_item_id(action, "vm:with:colons");
            assert_eq!(parse_session_item_id(&id), Some((action, "vm:with:colons")));
        }
        assert_eq!(parse_session_item_id("quit"), None);
        assert_eq!(parse_session_item_id("session:explode:x"), None);
        assert_eq!(parse_session_item_id("session:pause"), None);
    }

    #[test]
    fn labels_describe_the_session() {
        let s = view("atlas", "https://lhcathome.cern.ch", SessionState::Paused);
        assert_eq!(session_title(&s), "https://lhcathome.cern.ch — atlas VM");
        assert_eq!(session_detail(&s), "Paused · CPU cap 50%");
        let unnamed = SessionView {
            vm: String::new(),
            ..s
        };
        assert_eq!(session_title(&unnamed), "https://lhcathome.cern.ch — atlas");
        assert_eq!(state_words(SessionState::Saved), "hibernated");
    }

    #[test]
    fn icon_shows_attention_first_then_running() {
        let idle = [view("a", "https://a", SessionState::Paused)];
        let busy = [
            view("a", "https://a", SessionState::Paused),
            view("b", "https://b", SessionState::Running),
        ];
        assert_eq!(icon_for(&[], false), IconKind::Idle);
        assert_eq!(icon_for(&idle, false), IconKind::Idle);
        assert_eq!(icon_for(&busy, false), IconKind::Running);
        assert_eq!(icon_for(&busy, true), IconKind::Attention);
        assert_eq!(icon_for(&[], true), IconKind::Attention);
    }

    #[test]
    fn pause_and_resume_all_need_something_to_do() {
        let running = [view("a", "https://a", SessionState::Running)];
        let saved = [view("a", "https://a", SessionState::Saved)];
        assert!(can_pause_all(&running) && !can_resume_all(&running));
        assert!(!can_pause_all(&saved) && can_resume_all(&saved));
        assert!(!can_pause_all(&[]) && !can_resume_all(&[]));
    }

    #[test]
    fn model_sorts_sessions_and_ignores_snooze_without_a_controller() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let m = MenuModel::new(
            addr,
            vec![
                view("z", "https://b", SessionState::Running),
                view("y", "https://a", SessionState::Running),
            ],
            None,
            true,
            0,
        );
        assert_eq!(m.sessions[0].name, "y");
        assert!(!m.snoozed && !m.idle_control);
        assert_eq!(m.status, "Listening on 127.0.0.1:1 · 2 sessions");
        let m2 = MenuModel::new(
            addr,
            vec![],
            Some("idle · no VM under idle control"),
            true,
            0,
        );
        assert!(m2.snoozed && m2.idle_control);
        assert_eq!(running(&m.sessions).len(), 2);
    }

    #[test]
    fn only_plain_web_origins_are_opened() {
        assert!(openable_origin("https://lhcathome.cern.ch"));
        assert!(openable_origin("http://test.local:8080"));
        assert!(!openable_origin("file:///etc/passwd"));
        assert!(!openable_origin("javascript:alert(1)"));
        assert!(!openable_origin("https://a b"));
        assert!(!openable_origin("https://a\n"));
        assert!(!openable_origin("--help"));
    }
}
