//! The wire format of the CernVM WebAPI 2.x protocol: frames, actions, events, codes. Pure data, no I/O.
//! (Built by the WebSocket API issue.)
