# A physical Ganeti node: a KVM host whose instance disks are DRBD-replicated LVs in the
# "ganeti" volume group on the NVMe disk.
#
# Ganeti itself is left out: nixpkgs has no Ganeti module to rely on, so bring the package and
# its units from your own overlay. This class provides what Ganeti expects of the host.
{ pkgs, ... }:
{
  # The BMC's serial-over-LAN is wired to the second UART and runs at 19200 baud.
  boot.kernelParams = [
    "console=tty0"
    "console=ttyS1,19200n8"
  ];

  # Ganeti configures DRBD resources itself; the in-kernel DRBD (8.4) must not call back into
  # drbdadm, and needs more minors than the default for many instances.
  boot.kernelModules = [ "drbd" ];
  boot.extraModprobeConfig = ''
    options drbd minor_count=128 usermode_helper=${pkgs.coreutils}/bin/true
  '';
  services.udev.packages = [ pkgs.drbd ];

  services.lvm.enable = true;

  environment.systemPackages = with pkgs; [
    drbd
    lvm2
    qemu_kvm
  ];

  services.openssh = {
    enable = true;
    settings = {
      PermitRootLogin = "prohibit-password";
      PasswordAuthentication = false;
    };
  };

  netbuild.provisionDisks = {
    enable = true;
    devices = [ "/dev/nvme0n1" ];
    format = ''
      # A VG left by an earlier install may already be active and would hold the disk open.
      vgchange --activate n ganeti || true
      wipefs --all --force /dev/nvme0n1
      pvcreate --yes --force /dev/nvme0n1
      vgcreate ganeti /dev/nvme0n1
      # Ganeti's cluster state; the rest of the VG is left for instance disks.
      lvcreate --yes --name node-state --size 20G ganeti
      mkfs.ext4 -F -L ganeti-state /dev/ganeti/node-state
    '';
    mount = ''
      vgchange --activate y ganeti
      mkdir -p /var/lib/ganeti
      mountpoint -q /var/lib/ganeti || mount /dev/ganeti/node-state /var/lib/ganeti
    '';
  };

  system.stateVersion = "26.05";
}
