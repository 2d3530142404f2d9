//! Image cache commands: usage and "clear cache" (keeps the images sessions use).

use tauri::State;
use webapi_core::daemon::panel::{self, CacheInfo, Cleared};

use super::PanelState;
use crate::ShellState;

#[tauri::command]
pub async fn cache_info(
    state: State<'_, ShellState>,
    panel: State<'_, PanelState>,
) -> Result<CacheInfo, String> {
    let images = panel
        .images
        .as_ref()
        .ok_or("this daemon has no image cache")?;
    Ok(panel::cache_info(&state.daemon, images).await)
}

#[tauri::command]
pub async fn clear_cache(
    state: State<'_, ShellState>,
    panel: State<'_, PanelState>,
) -> Result<Cleared, String> {
    let images = panel
        .images
        .as_ref()
        .ok_or("this daemon has no image cache")?;
    panel::clear_cache(&state.daemon, images).await
}
