fn main() {
    // Every app command gets an `allow-<command>` permission; a window may call only the commands
    // its capability (capabilities/*.json) grants. List each new command here.
    let commands = tauri_build::AppManifest::new().commands(&[
        "daemon_status",
        "consent_answer",
        "list_sessions",
        "session_action",
        "set_session_policy",
        "session_samples",
        "idle_info",
        "recent_events",
        "get_settings",
        "save_settings",
        "cache_info",
        "clear_cache",
        "blocked_sites",
        "unblock_site",
        "remembered_sites",
        "forget_site",
        "get_start_at_login",
        "set_start_at_login",
        "open_logs_folder",
        "quit_app",
    ]);
    // The windows' pages (frontendDist) are compiled into the app by `generate_context!`: rebuild when
    // they change, not only when Rust code does.
    println!("cargo:rerun-if-changed=../ui/app");
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(commands))
        .expect("tauri-build failed");
}
