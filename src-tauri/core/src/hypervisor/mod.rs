//! The `Hypervisor` trait and its backends (QEMU over QMP, VirtualBox over VBoxManage).
//! (Built by the real-VMs and VirtualBox issues.)
