//! Image downloads: streaming checksum, resume, shared cache. (Built by the images issue.)
