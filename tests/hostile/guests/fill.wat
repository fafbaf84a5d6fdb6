;; A WASI preview1 command granted a directory (fd 3) read-write: it creates `big` there and
;; writes 64 KiB blocks to it, 4096 times (256 MiB), then prints its result.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "big")
  (data (i32.const 16) "1\n")
  (func (export "_start")
    (local $i i32)
    ;; path_open(fd 3, lookup flags 0, "big", O_CREAT|O_TRUNC, rights: all, inheriting: all,
    ;; fdflags 0, the new fd at 32)
    (drop (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 3) (i32.const 9)
      (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 32)))
    ;; one iovec at 40: 64 KiB from 65536
    (i32.store (i32.const 40) (i32.const 65536))
    (i32.store (i32.const 44) (i32.const 65536))
    (block $done
      (loop $write
        (br_if $done (i32.ge_u (local.get $i) (i32.const 4096)))
        (drop (call $fd_write (i32.load (i32.const 32)) (i32.const 40) (i32.const 1) (i32.const 48)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $write)))
    (i32.store (i32.const 40) (i32.const 16))
    (i32.store (i32.const 44) (i32.const 2))
    (drop (call $fd_write (i32.const 1) (i32.const 40) (i32.const 1) (i32.const 48)))))
