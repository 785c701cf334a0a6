# Shared by the service VMs: a QEMU/KVM guest with virtio devices, a serial console and SSH.
{ modulesPath, ... }:
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];

  services.qemuGuest.enable = true;

  boot.kernelParams = [ "console=tty0" "console=ttyS0,115200n8" ];

  services.openssh = {
    enable = true;
    settings = {
      PermitRootLogin = "prohibit-password";
      PasswordAuthentication = false;
    };
  };

  # The whole store travels in the initrd at every boot.
  documentation.enable = false;
}
