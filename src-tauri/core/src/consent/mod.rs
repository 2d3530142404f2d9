//! Consent broker: one dialog at a time, the reject-twice-in-five-seconds rule, remembered decisions.
//! UI-agnostic: the tray app implements the `Prompter` trait with a window. (Built by the consent issue.)
