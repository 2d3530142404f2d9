//! Sessions: one actor task per session owning its state machine, commanded over a channel
//! ([`SessionHandle`], [`Command`]); typed parameters, `userData` macros, target-state routing,
//! API-port probing, the view `get` reads without a mailbox round trip, and persistence of session
//! records across daemon restarts.

mod actor;
mod image_port;
mod in_flight;
mod macros;
mod outbox;
mod params;
mod probe;
mod record;
mod route;
mod secret;
mod view;

pub use actor::{
    spawn_new, spawn_recovered, Command, Control, Reply, SessionContext, SessionHandle,
    SessionSnapshot, Subscriber,
};
pub use image_port::{ImageFailure, ImageHold, ImageRequest, ImageSource, LocalImage, ProgressFn};
pub use in_flight::{InFlight, InFlightToken};
pub use macros::expand_user_data;
pub use outbox::Outbox;
pub use params::{api_url, validate_name, ParamError, SessionParams, SETTABLE};
pub use record::{SessionRecord, VmRecord};
pub use route::{plan, retry_delay, Step, Target};
pub use secret::SecretHash;
