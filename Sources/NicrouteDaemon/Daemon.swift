public enum Daemon {}
