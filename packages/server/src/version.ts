/** Version of the platform, as reported by the API and `insitu status`. */
export const VERSION = '0.1.0';
