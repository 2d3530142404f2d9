//! Domain keystore, VMCP fetch with `cvm_salt` / `cvm_hostid`, signature verification. (Built by the trust issue.)
