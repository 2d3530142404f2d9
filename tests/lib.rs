//! Helpers shared by the end-to-end tests in this folder (see docs/architecture.md, "Tests").
