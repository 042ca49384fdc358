#include "model/unit.h"

#include <algorithm>

namespace zt {

int Unit::add_param(std::string name, Shape shape, ParamKind kind, ParamInit init) {
  ZT_CHECK(!params_flat_.defined(), "unit {} is already bound", name_);
  ParamSpec p{std::move(name), std::move(shape), kind, init, numel_};
  numel_ += p.numel();
  params_.push_back(std::move(p));
  return static_cast<int>(params_.size()) - 1;
}

void Unit::bind(Tensor flat_params, Tensor flat_grads) {
  bind_params(std::move(flat_params));
  bind_grads(std::move(flat_grads));
}

void Unit::bind_params(Tensor flat_params) {
  ZT_CHECK(!flat_params.defined() || flat_params.numel() >= numel_, "unit {} needs {} elements, got {}", name_,
           numel_, flat_params.numel());
  params_flat_ = std::move(flat_params);
}

void Unit::bind_grads(Tensor flat_grads) {
  ZT_CHECK(!flat_grads.defined() || flat_grads.numel() >= numel_, "unit {} needs {} elements, got {}", name_,
           numel_, flat_grads.numel());
  grads_flat_ = std::move(flat_grads);
  stale_.clear();
}

void Unit::mark_grads_stale() {
  ZT_CHECK(grads_flat_.defined(), "unit {} has no gradients bound", name_);
  stale_.assign(params_.size(), true);
}

GradWrite Unit::claim_grads(int first, int last) {
  ZT_CHECK(first >= 0 && first <= last && last < static_cast<int>(params_.size()), "params {}..{} of unit {}", first,
           last, name_);
  if (stale_.empty()) return GradWrite::accumulate;
  if (!std::all_of(stale_.begin() + first, stale_.begin() + last + 1, [](bool s) { return s; })) {
    zero_stale(first, last);
    return GradWrite::accumulate;
  }
  std::fill(stale_.begin() + first, stale_.begin() + last + 1, false);
  return GradWrite::overwrite;
}

Tensor Unit::grad_to_add(int first, int last, const Shape& shape) {
  zero_stale(first, last);
  return grad_span(first, last, shape);
}

void Unit::zero_stale_grads() {
  if (!stale_.empty()) zero_stale(0, static_cast<int>(params_.size()) - 1);
  stale_.clear();
}

void Unit::zero_stale(int first, int last) {
  if (stale_.empty()) return;
  for (int i = first; i <= last; ++i)
    if (stale_[i]) {
      zero_grad(i);
      stale_[i] = false;
    }
}

// A large one by every thread (fill): a large vocabulary's untied embedding gradient (50257
// x 768: 154 MB) is zeroed here. A small one (a norm's, a bias) by a memset on this thread,
// without a parallel region's start and barrier.
void Unit::zero_grad(int i) {
  Tensor g = grad(i);
  if (g.nbytes() < (size_t{1} << 20))
    g.zero_();
  else
    fill(g, 0.f);
}

Tensor Unit::view_of(const Tensor& flat, int first, int last, const Shape& shape) const {
  ZT_CHECK(flat.defined(), "unit {} has no buffers bound", name_);
  const ParamSpec& a = params_.at(first);
  const ParamSpec& b = params_.at(last);
  int64_t n = b.offset + b.numel() - a.offset;
  ZT_CHECK(shape_numel(shape) == n, "span {}..{} has {} elements, not {}", a.name, b.name, n,
           zt::shape_str(shape));
  return flat.view(a.offset, shape);
}

}  // namespace zt
