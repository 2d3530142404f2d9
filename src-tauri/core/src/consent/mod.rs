//! Consent broker: before a website may create a new VM session, the user decides in a dialog that
//! belongs to the app (never to the page). One dialog at a time, further requests queued per origin;
//! a timeout counts as a rejection; the reject-twice-in-five-seconds rule blocks an origin
//! (persisted, listable, undoable); "remember my answer" decisions per origin.
//!
//! UI-agnostic: the tray app implements [`Prompter`] with a window; `cvmwebapi serve` uses
//! [`HeadlessPrompter`]. The daemon calls [`ConsentBroker::request`] (or
//! [`ConsentBroker::request_with_progress`] to tell the page it is waiting).

mod broker;
mod clock;
mod decisions;
mod origin;
mod prompter;
mod queue;
mod request;
pub mod rule;

#[cfg(test)]
mod broker_tests;

pub use broker::{ConsentBroker, ConsentOptions, ConsentProgress, DEFAULT_TIMEOUT};
pub use clock::{Clock, SystemClock};
pub use decisions::{SiteEntry, DECISIONS_FILE};
pub use origin::{serialize_origin, OriginView};
pub use prompter::{Answer, HeadlessPrompter, PromptError, Prompter};
pub use request::{ConsentDialog, ConsentRequest, Decision};
