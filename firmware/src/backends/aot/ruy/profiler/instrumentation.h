// Stand-in for ruy's profiler, which TFLite-Micro's reference kernels include
// for scope labels only. TFLite-Micro ships the same no-op in its own tree;
// the wheels we take the kernels from do not, so the aot backend provides it.
#pragma once
namespace ruy {
namespace profiler {
class ScopeLabel {
 public:
  template <typename... Args>
  explicit ScopeLabel(Args...) {}
};
}  // namespace profiler
}  // namespace ruy
