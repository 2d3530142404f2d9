//! One actor per session owning its state machine; persistence across restarts. (Built by the real-VMs issue.)
