;; A WASI preview1 command that calls poll_oneoff with 8 million subscriptions (the bytes are
;; all zero: clock subscriptions with a timeout of 0), and exits with the errno it got.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 6000)
  (func (export "_start")
    (call $exit (call $poll (i32.const 0) (i32.const 0) (i32.const 8000000) (i32.const 16)))))
