fn main() {
    // Every app command gets an `allow-<command>` permission; a window may call only the commands
    // its capability (capabilities/*.json) grants. List each new command here.
    let commands = tauri_build::AppManifest::new().commands(&["daemon_status", "consent_answer"]);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(commands))
        .expect("tauri-build failed");
}
