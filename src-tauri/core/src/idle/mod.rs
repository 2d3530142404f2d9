//! Idle sources (X11, Wayland/GNOME, unknown) and the daemonMinCap / daemonMaxCap / daemonFlags policy.
//! (Built by the idle-control issue.)
