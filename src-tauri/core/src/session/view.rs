//! What `get` reads, published by the session actor so that a connection answers `get` at once instead
//! of a round trip through the actor's mailbox. The actor publishes every change before it sends the
//! reply or event that follows it, so a page that saw the `succeed` of its `set` reads the new value.

use tokio::sync::watch;

use super::params::SessionParams;

/// The values `get` shows: the parameters and the forwarded API port.
#[derive(Debug, Clone, PartialEq)]
struct GetView {
    params: SessionParams,
    api_port: Option<u16>,
    /// False while a recovered session re-attaches to its VM: `get` then waits in the mailbox.
    serving: bool,
}

/// The actor's end: publishes the view.
#[derive(Debug)]
pub(super) struct ViewPublisher(watch::Sender<GetView>);

/// A connection's end: reads the latest published view. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct ViewReader(watch::Receiver<GetView>);

/// A view of `params` (no API port yet); `serving` false until the actor says so.
pub(super) fn channel(params: &SessionParams, serving: bool) -> (ViewPublisher, ViewReader) {
    let (tx, rx) = watch::channel(GetView {
        params: params.clone(),
        api_port: None,
        serving,
    });
    (ViewPublisher(tx), ViewReader(rx))
}

impl ViewPublisher {
    /// Publishes `params` and `api_port` if they differ from the published view.
    pub fn publish(&self, params: &SessionParams, api_port: Option<u16>) {
        self.0.send_if_modified(|view| {
            if view.params == *params && view.api_port == api_port {
                return false;
            }
            view.params.clone_from(params);
            view.api_port = api_port;
            true
        });
    }

    /// From now on, `get` may be answered from the view.
    pub fn serving(&self) {
        self.0
            .send_if_modified(|view| !std::mem::replace(&mut view.serving, true));
    }
}

impl ViewReader {
    /// The value of `key` as `get` shows it (`""` for unknown keys); `None` while not serving.
    pub fn get(&self, key: &str) -> Option<String> {
        let view = self.0.borrow();
        view.serving.then(|| view.params.get(key, view.api_port))
    }
}
