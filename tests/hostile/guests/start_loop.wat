;; A core module whose start function (run at instantiation, before `_start`) never returns.
(module
  (func $forever (loop $l (br $l)))
  (start $forever)
  (func (export "_start")))
