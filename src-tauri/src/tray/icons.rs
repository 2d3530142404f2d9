//! The tray's state icons, generated from `icons/icon.svg` by `scripts/make-tray-icons.sh` and built in.

use tauri::image::Image;

use super::model::IconKind;

const IDLE: &[u8] = include_bytes!("../../../icons/tray/idle.png");
const RUNNING: &[u8] = include_bytes!("../../../icons/tray/running.png");
const ATTENTION: &[u8] = include_bytes!("../../../icons/tray/attention.png");

/// The PNG bytes of the icon for `kind`.
pub fn png(kind: IconKind) -> &'static [u8] {
    match kind {
        IconKind::Idle => IDLE,
        IconKind::Running => RUNNING,
        IconKind::Attention => ATTENTION,
    }
}

/// The decoded icon for `kind`.
pub fn image(kind: IconKind) -> tauri::Result<Image<'static>> {
    Image::from_bytes(png(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_icons_decode_and_differ() {
        let kinds = [IconKind::Idle, IconKind::Running, IconKind::Attention];
        let images: Vec<_> = kinds.iter().map(|k| image(*k).unwrap()).collect();
        for img in &images {
            assert_eq!((img.width(), img.height()), (64, 64));
        }
        assert_ne!(images[0].rgba(), images[1].rgba());
        assert_ne!(images[1].rgba(), images[2].rgba());
    }
}
