import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real Nix builds and QEMU boots take seconds to minutes; no test asserts on timing.
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ["default"],
  },
});
