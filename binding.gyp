# Secondary build (node-gyp): `npm run build:gyp`. CMakeLists.txt is the source of
# truth; scripts/check-sources.js fails when the two source lists differ.
# libtorch's location comes from the same libtorch.json, via scripts/gyp-config.js.
{
  "targets": [
    {
      "target_name": "torchnode",
      "sources": [
        "native/addon.cc",
        "native/tensor.cc",
        "native/factories.cc",
        "native/math.cc",
        "native/shape.cc",
        "native/nn.cc",
        "native/linear.cc",
        "native/allocator.cc",
        "native/autograd.cc",
        "native/device.cc",
        "native/distributed.cc",
        "native/dispatch.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/gyp-config.js include_dirs)"
      ],
      "defines": [
        "NAPI_EXPERIMENTAL",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "<!@(node scripts/gyp-config.js defines)"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O3", "-Wno-unused-parameter"],
      "libraries": ["<!@(node scripts/gyp-config.js libraries)"],
      "ldflags": ["<!@(node scripts/gyp-config.js ldflags)"],
      "conditions": [
        ["OS=='linux'", { "cflags_cc": ["-fopenmp"] }]
      ],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "GCC_ENABLE_CPP_RTTI": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_LDFLAGS": ["<!@(node scripts/gyp-config.js ldflags)"]
      }
    }
  ]
}
