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
    # Where the id of the last provision is recorded (and sshd's host keys kept): Ganeti's state,
    # on the provisioned LV.
    persistentDir = "/var/lib/ganeti";
    # Ganeti's daemons keep their state in /var/lib/ganeti: without the provisioned LV mounted
    # there they would write into the tmpfs root and lose it at the next boot.
    requiredBy = [
      "ganeti-noded.service"
      "ganeti-confd.service"
      "ganeti-wconfd.service"
      "ganeti-luxid.service"
      "ganeti-rapi.service"
      "ganeti-mond.service"
      "ganeti-kvmd.service"
      "ganeti-metad.service"
    ];
    # netbuild has checked nothing on the disk is mounted or swapped on, and has deactivated and
    # removed the volume groups on it (LVM's auto-activation cannot race the wipe) before this runs.
    format = ''
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
