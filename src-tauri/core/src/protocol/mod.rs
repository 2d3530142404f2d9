//! The wire format of the CernVM WebAPI 2.x protocol (shared/spec/protocol.md §2, §5.5, §6): incoming
//! action frames with the original's parameter typing, outgoing result/event/error frames serialised in
//! the original's shape, and the error and state codes. Pure data and parsing, no I/O.

mod codes;
mod depth;
mod frame;
mod origin;
mod outgoing;
mod params;

pub use codes::{
    ErrorCode, SessionState, HVF_DEPLOYMENT_HDD, HVF_SYSTEM_64BIT, UI_MASK_BUTTON, UI_OK,
};
pub use depth::json_depth_exceeds;
pub use frame::{parse_action, Action, FrameError, FrameLimits};
pub use origin::CallerOrigin;
pub use outgoing::Outgoing;
pub use params::{flatten_params, stream_int, Params};
