;; A WASI command whose result line on stdout is "1e999999\0a" (9 bytes).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "1e999999\0a")
  (func (export "_start")
    ;; one iovec at 0: base 64, length 9; bytes written at 16
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 9))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
