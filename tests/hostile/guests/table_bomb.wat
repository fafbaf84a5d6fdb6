;; Grows a table by 100,000 elements at a time until growth is refused, then traps.
(module
  (table $t 1 funcref)
  (func (export "_start")
    (loop $more
      (br_if $more
        (i32.ne (table.grow $t (ref.null func) (i32.const 100000)) (i32.const -1))))
    unreachable))
