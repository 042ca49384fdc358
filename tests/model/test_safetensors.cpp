#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <fstream>

#include "core/error.h"
#include "tests/support/errors.h"
#include "core/kernels.h"
#include "model/hf_io.h"
#include "model/safetensors.h"
#include "tests/support/gradcheck.h"
#include "tests/support/run_dir.h"

namespace zt {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::TempDir;

using testing::error_of;

TEST(Safetensors, WriteThenOpenIsBitwiseIdentical) {
  TempDir tmp;
  Tensor a = testing::random_tensor({3, 5}, 1);
  Tensor b = Tensor::empty({7}, DType::bf16);
  convert(b, testing::random_tensor({7}, 2));
  Tensor c = Tensor::empty({2, 2}, DType::i32);
  for (int i = 0; i < 4; ++i) c.data<int32_t>()[i] = i * 1000 - 7;
  std::vector<NamedTensor> ts = {{"a.weight", a}, {"b", b}, {"c", c}};
  const std::string path = (tmp.path() / "x.safetensors").string();
  write_safetensors(path, ts, {{"format", "pt"}});
  SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a.weight", "b", "c"}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (const auto& t : ts) {
    Tensor got = f.get(t.name);
    EXPECT_EQ(got.dtype(), t.tensor.dtype());
    EXPECT_EQ(got.shape(), t.tensor.shape());
    EXPECT_EQ(0, std::memcmp(got.raw(), t.tensor.raw(), got.nbytes())) << t.name;
  }
  uint64_t n;
  std::ifstream(path, std::ios::binary).read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_THAT(error_of([&] { f.get("nope"); }), HasSubstr("no tensor named 'nope'"));
}

TEST(Safetensors, RejectsCorruptHeaders) {
  TempDir tmp;
  auto write_raw = [&](const std::string& header, size_t data_bytes, uint64_t claimed = 0) {
    const std::string path = (tmp.path() / "bad.safetensors").string();
    std::ofstream out(path, std::ios::binary);
    uint64_t n = claimed ? claimed : header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << std::string(data_bytes, '\0');
    return path;
  };
  auto err = [&](const std::string& path) { return error_of([&] { SafetensorsFile::open(path); }); };
  EXPECT_THAT(err(write_raw("{}", 0, 1 << 20)), HasSubstr("exceeds the file size"));
  EXPECT_THAT(err(write_raw("{not json", 0)), HasSubstr("not valid JSON"));
  EXPECT_THAT(err(write_raw(R"({"x":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}})", 1)), HasSubstr("unsupported dtype"));
  EXPECT_THAT(err(write_raw(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8)), HasSubstr("outside"));
  EXPECT_THAT(err(write_raw(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16)), HasSubstr("needs 12"));
  EXPECT_THAT(err(write_raw(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12)),
              HasSubstr("overlap"));
  EXPECT_THAT(err((tmp.path() / "missing.safetensors").string()), HasSubstr("not found"));
}

TEST(Safetensors, RejectsBadMetadataNonIntegerAndOverflowingShapesNamingTheFile) {
  TempDir tmp;
  const std::string path = (tmp.path() / "bad.safetensors").string();
  auto err = [&](const std::string& header, size_t data_bytes) {
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << std::string(data_bytes, '\0');
    out.close();
    return error_of([&] { SafetensorsFile::open(path); });
  };
  EXPECT_THAT(err(R"({"__metadata__":[1,2]})", 0), AllOf(HasSubstr(path), HasSubstr("__metadata__ is array")));
  EXPECT_THAT(err(R"({"__metadata__":"pt"})", 0), AllOf(HasSubstr(path), HasSubstr("__metadata__ is string")));
  // 16.5 x 32 f32 would be cut to 16 x 32 = 2048 bytes, which the range holds.
  EXPECT_THAT(err(R"({"x":{"dtype":"F32","shape":[16.5,32],"data_offsets":[0,2048]}})", 2048),
              AllOf(HasSubstr(path), HasSubstr("'x'"), HasSubstr("16.5")));
  // Negative dimensions whose product is positive.
  EXPECT_THAT(err(R"({"x":{"dtype":"F32","shape":[-1,-4],"data_offsets":[0,16]}})", 16), HasSubstr("-1"));
  EXPECT_THAT(err(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16.5]}})", 17), HasSubstr("16.5"));
  // 2^62 * 4 * 512 elements of 4 bytes wrap to 0 bytes in 64 bits.
  EXPECT_THAT(err(R"({"x":{"dtype":"F32","shape":[4611686018427387904,4,512],"data_offsets":[0,0]}})", 0),
              AllOf(HasSubstr(path), HasSubstr("'x'"), HasSubstr("64-bit")));
  EXPECT_THAT(err(R"({"x":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})", 0),
              HasSubstr("18446744073709551615"));
}

// Another writer may pad the header less than to 8 bytes: the data then starts misaligned.
TEST(Safetensors, TensorsAfterAnUnpaddedHeaderAreReadAligned) {
  TempDir tmp;
  const std::string path = (tmp.path() / "odd.safetensors").string();
  const std::string header = R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"h":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]}})";
  ASSERT_NE(header.size() % 4, 0u);
  {
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header;
    const float x[3] = {1.5f, -2.f, 3.25f};
    const uint16_t h[2] = {f32_to_bf16(0.5f), f32_to_bf16(-8.f)};
    out.write(reinterpret_cast<const char*>(x), 12);
    out.write(reinterpret_cast<const char*>(h), 4);
  }
  SafetensorsFile f = SafetensorsFile::open(path);
  Tensor x = f.get("x"), h = f.get("h");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(x.raw()) % 4, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(h.raw()) % 2, 0u);
  EXPECT_EQ(x.data<float>()[0], 1.5f);
  EXPECT_EQ(x.data<float>()[2], 3.25f);
  EXPECT_EQ(bf16_to_f32(h.data<uint16_t>()[1]), -8.f);
}

ModelSpec small_spec(Family f) {
  ModelSpec s;
  s.family = f;
  s.n_layer = 2;
  s.n_head = 2;
  s.n_kv_head = f == Family::gpt2 ? 2 : 1;
  s.d_model = 8;
  s.d_ff = 12;
  s.vocab_size = 11;
  s.max_seq_len = 6;
  s.tie_embeddings = f == Family::gpt2;
  s.attn_bias = f == Family::gpt2;
  return s;
}

TEST(Safetensors, HuggingFaceExportImportIsBitwiseAndTransposesConv1D) {
  for (Family f : {Family::gpt2, Family::llama}) {
    TempDir tmp;
    const std::string path = (tmp.path() / "m.safetensors").string();
    LocalModel a(small_spec(f));
    save_hf_safetensors(a.model, path);
    SafetensorsFile file = SafetensorsFile::open(path);
    if (f == Family::gpt2) {
      EXPECT_EQ(file.shape("transformer.h.0.attn.c_attn.weight"), (Shape{8, 24}));  // Conv1D [in, out]
      EXPECT_EQ(file.shape("transformer.h.1.mlp.c_proj.weight"), (Shape{12, 8}));
      EXPECT_FALSE(file.contains("lm_head.weight"));
      // Element (row o, col i) of our [out, in] matrix sits at (i, o) in the file.
      Tensor ours = a.model.units()[1]->param(2);
      Tensor theirs = file.get("transformer.h.0.attn.c_attn.weight");
      EXPECT_EQ(ours.data<float>()[5 * 8 + 3], theirs.data<float>()[3 * 24 + 5]);
    } else {
      EXPECT_EQ(file.shape("model.layers.0.self_attn.k_proj.weight"), (Shape{4, 8}));
      EXPECT_TRUE(file.contains("lm_head.weight"));
    }
    ModelSpec other_seed = small_spec(f);
    other_seed.seed = 99;
    LocalModel b(other_seed);
    load_hf_safetensors(b.model, path);
    for (size_t u = 0; u < a.params.size(); ++u)
      EXPECT_EQ(0, std::memcmp(a.params[u].raw(), b.params[u].raw(), a.params[u].nbytes()));
  }
}

TEST(Safetensors, ImportRefusesMissingExtraOrMisshapenTensorsBeforeChangingAnything) {
  TempDir tmp;
  LocalModel model(small_spec(Family::llama));
  auto tensors = to_hf_tensors(model.model);
  auto write_variant = [&](auto edit) {
    auto copy = tensors;
    edit(copy);
    const std::string path = (tmp.path() / "v.safetensors").string();
    write_safetensors(path, copy);
    return path;
  };
  LocalModel target(small_spec(Family::llama));
  Tensor before = target.params[1].clone(MemTag::other);
  auto err = [&](const std::string& path) { return error_of([&] { load_hf_safetensors(target.model, path); }); };
  EXPECT_THAT(err(write_variant([](auto& v) { v.pop_back(); })), HasSubstr("missing tensor 'lm_head.weight'"));
  EXPECT_THAT(err(write_variant([](auto& v) { v.push_back({"extra.weight", v[0].tensor}); })),
              HasSubstr("unexpected tensor 'extra.weight'"));
  EXPECT_THAT(err(write_variant([](auto& v) { v[2].tensor = v[2].tensor.reshape({v[2].tensor.numel()}); })),
              HasSubstr("has shape"));
  EXPECT_EQ(0, std::memcmp(before.raw(), target.params[1].raw(), before.nbytes()));
}

TEST(Safetensors, ImportRefusesNaNAndInfinityNamingTheTensorBeforeChangingAnything) {
  TempDir tmp;
  LocalModel model(small_spec(Family::llama));
  const auto tensors = to_hf_tensors(model.model);
  LocalModel target(small_spec(Family::llama));
  const Tensor before = target.params[1].clone(MemTag::other);
  const std::string path = (tmp.path() / "v.safetensors").string();
  // Tensor 3 made non-finite at element 5, stored as `dtype`.
  auto err = [&](DType dtype, uint32_t bits) {
    auto copy = tensors;
    for (auto& t : copy) {
      Tensor c = Tensor::empty(t.tensor.shape(), dtype);
      convert(c, t.tensor);
      t.tensor = c;
    }
    if (dtype == DType::f32)
      copy[3].tensor.data<float>()[5] = std::bit_cast<float>(bits);
    else
      copy[3].tensor.data<uint16_t>()[5] = static_cast<uint16_t>(bits);
    write_safetensors(path, copy);
    return error_of([&] { load_hf_safetensors(target.model, path); });
  };
  const std::string name = tensors[3].name;
  EXPECT_THAT(err(DType::f32, 0x7fc00000u), AllOf(HasSubstr(path), HasSubstr("'" + name + "'"), HasSubstr("NaN at element 5")));
  EXPECT_THAT(err(DType::bf16, 0x7f80u), AllOf(HasSubstr("'" + name + "'"), HasSubstr("inf at element 5")));
  EXPECT_THAT(err(DType::f16, 0xfc00u), AllOf(HasSubstr("'" + name + "'"), HasSubstr("-inf at element 5")));
  EXPECT_EQ(0, std::memcmp(before.raw(), target.params[1].raw(), before.nbytes()));
}

// The header padded by one space more than write_safetensors does: every tensor misaligned.
TEST(Safetensors, ImportOfAMisalignedFileIsBitwise) {
  TempDir tmp;
  LocalModel a(small_spec(Family::gpt2));
  const std::string path = (tmp.path() / "m.safetensors").string();
  save_hf_safetensors(a.model, path);
  std::string bytes = testing::read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  // (Rebuilt rather than insert()ed: GCC 12 misreads an insert at an unbounded offset.)
  bytes = bytes.substr(0, 8 + n) + " " + bytes.substr(8 + n);
  ++n;
  std::memcpy(bytes.data(), &n, 8);
  std::ofstream(path, std::ios::binary) << bytes;
  LocalModel b(small_spec(Family::gpt2));
  load_hf_safetensors(b.model, path);
  for (size_t u = 0; u < a.params.size(); ++u)
    EXPECT_EQ(0, std::memcmp(a.params[u].raw(), b.params[u].raw(), a.params[u].nbytes()));
}

}  // namespace
}  // namespace zt
