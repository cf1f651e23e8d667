"""Virtual machines for the vagrant provider: the box, the accelerator, libvirtd, the Vagrantfile."""
